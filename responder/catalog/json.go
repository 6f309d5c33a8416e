package catalog

// Document is the catalog as `kms-responder catalog --json` prints it: data
// with stable field names, for scripts.
type Document struct {
	Groups []GroupDoc `json:"host_key_groups"`
	// Unactivated are the counted IDs no group activates (a host refuses
	// them with 0xC004F042); only in the unfiltered listing.
	Unactivated []CountedDoc `json:"counted_ids_no_group_activates,omitempty"`
	HostBuilds  []BuildDoc   `json:"host_builds,omitempty"`
}

// GroupDoc is one host key group.
type GroupDoc struct {
	Name        string       `json:"name"`
	Description string       `json:"description"`
	Application string       `json:"application"`
	AppID       string       `json:"application_id"`
	CSVLKID     string       `json:"csvlk_activation_id,omitempty"`
	EPIDGroupID int          `json:"epid_group_id"`
	KeyIDMin    int64        `json:"epid_key_id_min"`
	KeyIDMax    int64        `json:"epid_key_id_max"`
	MinBuild    int          `json:"min_host_build"`
	Derived     bool         `json:"derived"`
	Source      string       `json:"source"`
	Overlay     bool         `json:"overlay,omitempty"`
	Activates   []CountedDoc `json:"activates"`
}

// CountedDoc is one counted ID with its editions.
type CountedDoc struct {
	ID        string       `json:"id"`
	Key       string       `json:"key"`
	Name      string       `json:"name"`
	Kind      string       `json:"kind"`
	Threshold int          `json:"threshold"`
	Protocol  int          `json:"protocol"`
	Retail    bool         `json:"retail,omitempty"`
	Preview   bool         `json:"preview,omitempty"`
	AzureOnly bool         `json:"azure_only,omitempty"`
	Source    string       `json:"source"`
	Overlay   bool         `json:"overlay,omitempty"`
	Editions  []EditionDoc `json:"editions,omitempty"`
}

// EditionDoc is one volume edition: what a client sends and its GVLK.
type EditionDoc struct {
	Name    string   `json:"name"`
	Aliases []string `json:"aliases,omitempty"`
	SKUID   string   `json:"sku_id"`
	GVLK    string   `json:"gvlk,omitempty"`
	Source  string   `json:"source"`
	Overlay bool     `json:"overlay,omitempty"`
}

// BuildDoc is one host build usable in ePIDs.
type BuildDoc struct {
	Build       int    `json:"build"`
	PlatformID  int    `json:"platform_id"`
	ReleaseDate string `json:"release_date"`
	Name        string `json:"name"`
	Source      string `json:"source"`
}

// Document returns groups (e.g. from Matching) as data; all adds the
// counted IDs no group activates and the host builds.
func (c *Catalog) Document(groups []*HostKeyGroup, all bool) Document {
	d := Document{Groups: []GroupDoc{}}
	for _, g := range groups {
		gd := GroupDoc{
			Name: g.Name, Description: g.Description, AppID: g.AppID.String(), EPIDGroupID: g.EPIDGroupID,
			KeyIDMin: g.KeyIDMin, KeyIDMax: g.KeyIDMax, MinBuild: g.MinBuild, Derived: g.Derived, Source: g.Source, Overlay: g.Overlay,
			Activates: []CountedDoc{},
		}
		if a, ok := c.appByID[g.AppID]; ok {
			gd.Application = a.Name
		}
		if !g.CSVLKID.IsNil() {
			gd.CSVLKID = g.CSVLKID.String()
		}
		for _, id := range g.Activates {
			if k, ok := c.countedByID[id]; ok {
				gd.Activates = append(gd.Activates, c.countedDoc(k))
			}
		}
		d.Groups = append(d.Groups, gd)
	}
	if all {
		for _, k := range c.counted {
			if len(c.GroupsCovering(k.AppID, k.ID)) == 0 {
				d.Unactivated = append(d.Unactivated, c.countedDoc(k))
			}
		}
		for _, b := range c.builds {
			d.HostBuilds = append(d.HostBuilds, BuildDoc{b.Build, b.PlatformID, b.ReleaseDate, b.Name, b.Source})
		}
	}
	return d
}

func (c *Catalog) countedDoc(k *CountedID) CountedDoc {
	cd := CountedDoc{ID: k.ID.String(), Key: k.Key, Name: k.Name, Kind: string(k.Kind), Threshold: k.Threshold,
		Protocol: k.Protocol, Retail: k.Retail, Preview: k.Preview, AzureOnly: k.AzureOnly, Source: k.Source, Overlay: k.Overlay}
	for _, e := range c.editionsByCID[k.ID] {
		cd.Editions = append(cd.Editions, EditionDoc{Name: e.Name, Aliases: e.Aliases, SKUID: e.SKUID.String(), GVLK: e.GVLK, Source: e.Source, Overlay: e.Overlay})
	}
	return cd
}
