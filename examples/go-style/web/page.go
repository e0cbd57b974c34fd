// Package web holds the site's page; `go generate ./web` renders it with this title.
package web

const Title = "Hello from a static binary"
