//go:build race

package docs_test

// raceBuild says this test binary was built with -race (make test builds
// it so): the guide's go commands then build with -race too, and take the
// dependencies the outer build compiled from the build cache.
const raceBuild = true
