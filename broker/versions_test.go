package broker

import (
	"fmt"
	"sort"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestAPIVersionTable asks a running broker which versions it serves: the
// answer is versions.go's table, every version in it is one kmsg can
// encode, and the table is listed so that a review sees every change.
func TestAPIVersionTable(t *testing.T) {
	b := protoBroker(t, nil)
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "creek-test", "1"
	resp, err := req.RequestWith(protoCtx(t), protoClient(t, b))
	if err != nil {
		t.Fatal(err)
	}
	served := map[int16]kmsg.ApiVersionsResponseApiKey{}
	for _, k := range resp.ApiKeys {
		served[k.ApiKey] = k
	}
	if len(served) != len(maxVersions) {
		t.Errorf("the broker serves %d APIs, the table lists %d", len(served), len(maxVersions))
	}
	keys := make([]kmsg.Key, 0, len(maxVersions))
	for k := range maxVersions {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, key := range keys {
		want := maxVersions[key]
		got, ok := served[key.Int16()]
		switch {
		case !ok:
			t.Errorf("%s is in the table but not served", key.Name())
		case got.MaxVersion != want:
			t.Errorf("%s is served up to v%d, the table says v%d", key.Name(), got.MaxVersion, want)
		case want > key.Request().MaxVersion():
			t.Errorf("%s v%d is beyond what kmsg can encode (v%d)", key.Name(), want, key.Request().MaxVersion())
		}
		note := ""
		if newer := key.Request().MaxVersion(); newer > want {
			note = fmt.Sprintf(" (kmsg knows up to v%d)", newer)
		}
		t.Logf("%-28s v%d-v%d%s", key.Name(), got.MinVersion, got.MaxVersion, note)
	}
}
