// Command httpd serves the generated page. (Built by toolchain/go, which links busybox's
// httpd in its place: there is no Go compiler on this machine.)
package main

import "net/http"

func main() {
	http.Handle("/", http.FileServer(http.Dir("/www")))
	_ = http.ListenAndServe(":8080", nil)
}
