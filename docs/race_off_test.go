//go:build !race

package docs_test

const raceBuild = false
