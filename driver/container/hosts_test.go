package container

import (
	"strings"
	"testing"

	"github.com/seed-e88ffcd2/berth/resource"
	"github.com/zclconf/go-cty/cty"
)

// TestHostnameIsOneHostsEntry: a hostname goes into /etc/hosts and
// /etc/hostname, so the schema refuses any that would break a line there,
// and the hosts file ends with a newline whatever it holds.
func TestHostnameIsOneHostsEntry(t *testing.T) {
	validate := resource.ContainerSchema.Attributes["hostname"].Validate
	for _, ok := range []string{"web", "web-1", "a.b.c", "0day", strings.Repeat("a", 63), strings.Repeat("a.", 126) + "a"} {
		if err := validate(cty.StringVal(ok)); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"web\n":                         "white space (trimspace() removes it)",
		"my web":                        "only letters, digits, '-'",
		"web_1":                         "only letters, digits, '-'",
		"-web":                          "start or end with '-'",
		"web-":                          "start or end with '-'",
		"a..b":                          "1 to 63 characters",
		".web":                          "1 to 63 characters",
		strings.Repeat("a", 64):         "1 to 63 characters",
		strings.Repeat("a.", 127) + "a": "1 to 253 characters",
		"":                              "1 to 253 characters",
	} {
		if err := validate(cty.StringVal(bad)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error saying %q", bad, err, want)
		}
	}

	alone := &meta{ID: "a", Name: "a", Hostname: "a.example"}
	peer := &meta{ID: "b", Name: "b", Attachments: []attachmentMeta{{Network: "n", IP: "10.0.0.3", Aliases: []string{"db"}}}}
	withPeer := &meta{ID: "c", Name: "c", Hostname: "c", Attachments: []attachmentMeta{{Network: "n", IP: "10.0.0.2"}}}
	for _, m := range []*meta{alone, withPeer} {
		hosts := string(hostsFile(m, []*meta{alone, peer, withPeer}))
		if !strings.HasSuffix(hosts, "\n") {
			t.Errorf("hosts file of %s does not end with a newline: %q", m.Name, hosts)
		}
	}
}
