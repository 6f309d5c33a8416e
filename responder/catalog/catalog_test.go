package catalog

import "testing"

func TestEmbeddedDataParses(t *testing.T) {
	c, err := Parse(EmbeddedFiles())
	if err != nil {
		t.Fatalf("embedded data: %v", err)
	}
	if len(c.Applications()) != 3 || len(c.Groups()) == 0 || len(c.Editions()) == 0 || len(c.HostBuilds()) == 0 {
		t.Fatalf("embedded data is incomplete: %d apps, %d groups, %d editions, %d builds",
			len(c.Applications()), len(c.Groups()), len(c.Editions()), len(c.HostBuilds()))
	}
}
