package catalog

import "embed"

//go:embed data/*.tsv
var dataFS embed.FS

// Table file names, as keys of the map Parse takes.
const (
	FileApps     = "apps.tsv"
	FileCounted  = "counted.tsv"
	FileGroups   = "groups.tsv"
	FileEditions = "editions.tsv"
	FileBuilds   = "builds.tsv"
)

// tableFiles lists the tables Parse needs, in the order it reads them.
var tableFiles = [...]string{FileApps, FileCounted, FileBuilds, FileGroups, FileEditions}

// EmbeddedFiles returns a copy of the embedded data tables keyed by file name,
// for tests and for tools that want to inspect or extend them.
func EmbeddedFiles() map[string][]byte { return embeddedFiles() }

func embeddedFiles() map[string][]byte {
	m := make(map[string][]byte, len(tableFiles))
	for _, name := range tableFiles {
		b, err := dataFS.ReadFile("data/" + name)
		if err != nil {
			// A missing embedded table is caught by TestEmbeddedDataParses
			// through the "missing table" error of Parse.
			continue
		}
		m[name] = b
	}
	return m
}
