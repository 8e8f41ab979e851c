//go:build !race

package servicetest

const raceBuild = false
