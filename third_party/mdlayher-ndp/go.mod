module github.com/mdlayher/ndp

go 1.20

require (
	github.com/google/go-cmp v0.6.0
	golang.org/x/net v0.22.0
)

require (
	golang.org/x/sys v0.18.0 // indirect
	golang.org/x/text v0.14.0 // indirect
)
