//go:build race

package main

// raceBuild says the test binary was built with -race (make test builds it
// so); a binary a test builds with the same flag reuses the dependencies the
// test build already compiled.
const raceBuild = true
