// Command hello is the demo's web application: a static Go program that
// berth packages into an image from a directory. It serves a page that
// counts its visits in a file on a volume, so the demo shows the volume
// keeping data, and /healthz for health checks, which the image has no
// shell or wget to run: "hello -check URL" is the check.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-check" {
		os.Exit(check(os.Args[2]))
	}
	addr := envOr("LISTEN", ":8080")
	dataDir := envOr("DATA_DIR", "/data")
	greeting := envOr("GREETING", "Hello from berth")
	var mu sync.Mutex
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		visits, err := bump(filepath.Join(dataDir, "visits"))
		mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		host, _ := os.Hostname()
		seed, _ := os.ReadFile(filepath.Join(dataDir, "seed.txt"))
		fmt.Fprintf(w, "%s! host=%s visits=%d seed=%q\n", greeting, host, visits, strings.TrimSpace(string(seed)))
	})
	log.Printf("hello: listening on %s, data in %s", addr, dataDir)
	log.Fatal(http.ListenAndServe(addr, nil))
}

// check fetches url and says whether it answered 200 OK: 0 if so, 1 if
// not, as a health check's exit code.
func check(url string) int {
	client := http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, resp.Status)
		return 1
	}
	return 0
}

// bump increments the counter kept in path and returns the new count.
func bump(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return 0, err
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	n++
	return n, os.WriteFile(path, []byte(strconv.Itoa(n)+"\n"), 0o644)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
