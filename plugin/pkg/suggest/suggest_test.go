package suggest

import (
	"reflect"
	"testing"
)

func TestClosest(t *testing.T) {
	keys := []string{"activation_interval", "renewal_interval", "idle_timeout", "io_timeout", "groups", "listen"}
	groups := []string{"windows-server-2019", "windows-server-2022", "windows-server-2025", "office-ltsc-2024", "office-2016"}
	for _, tc := range []struct {
		word       string
		candidates []string
		want       []string
	}{
		{"activation_intervall", keys, []string{"activation_interval"}},
		{"group", keys, []string{"groups"}},
		{"ACTIVATION_INTERVAL", keys, []string{"activation_interval"}},
		{"windows-server-2023", groups, []string{"windows-server-2022", "windows-server-2025", "windows-server-2019"}},
		{"office-ltsc", groups, []string{"office-ltsc-2024"}},
		{"zzzz", keys, nil},
		{"", keys, nil},
	} {
		if got := Closest(tc.word, tc.candidates, 3); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Closest(%q) = %q, want %q", tc.word, got, tc.want)
		}
	}
	if h := Hint("lisen", keys); h != `; did you mean "listen"?` {
		t.Errorf("Hint = %q", h)
	}
	if h := Hint("zzzz", keys); h != "" {
		t.Errorf("Hint for nothing close = %q", h)
	}
}

func FuzzClosest(f *testing.F) {
	f.Add("activation_intervall")
	f.Add("")
	f.Fuzz(func(t *testing.T, word string) {
		got := Closest(word, []string{"a", "listen", "groups"}, 2)
		if len(got) > 2 {
			t.Fatalf("%d results, max 2", len(got))
		}
	})
}
