package stores

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/creek-pipeline/creek/internal/processor"
	"github.com/creek-pipeline/creek/internal/storetest"
)

func TestOpenSearch(t *testing.T) {
	t.Parallel()
	server, url := storetest.OpenSearch(t)
	const index = "tweets"
	call := func(t *testing.T, method, path, body string) (int, []byte) {
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	count := func(t *testing.T) int {
		call(t, "POST", "/"+index+"/_refresh", "")
		_, b := call(t, "GET", "/"+index+"/_count", "")
		return int(gjson.GetBytes(b, "count").Int())
	}
	runStore(t, &store{
		name: "opensearch", server: server,
		flags: []string{"--to", "elasticsearch", "--es-url", url, "--es-index", index, "--es-create-index"},
		count: count,
		read: func(t *testing.T) map[string]processor.Tweet {
			out := map[string]processor.Tweet{}
			call(t, "POST", "/"+index+"/_refresh", "")
			st, b := call(t, "POST", "/"+index+"/_search?scroll=1m", `{"size":5000,"sort":["_doc"]}`)
			for st == http.StatusOK {
				hits := gjson.GetBytes(b, "hits.hits").Array()
				if len(hits) == 0 {
					break
				}
				for _, h := range hits {
					tw, err := processor.DecodeTweet([]byte(h.Get("_source").Raw))
					if err != nil || tw.ID != h.Get("_id").String() {
						t.Fatalf("document %s: %v", h.Get("_id"), err)
					}
					out[tw.ID] = tw
				}
				scroll, _ := json.Marshal(map[string]string{"scroll": "1m", "scroll_id": gjson.GetBytes(b, "_scroll_id").String()})
				st, b = call(t, "POST", "/_search/scroll", string(scroll))
			}
			return out
		},
	})
}
