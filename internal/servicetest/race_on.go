//go:build race

package servicetest

// raceBuild says the binary was built with -race.
const raceBuild = true
