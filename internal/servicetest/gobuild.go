package servicetest

// GoFlags is the GOFLAGS for a go command a test runs (the N-1 test's build
// of the previous release, the NEW_SERVICE guide's build of its copy):
// offline-safe (-mod=readonly), without VCS stamping, and with -race when
// this test binary was built with it, as make test builds it. Built with the
// test binary's own flags, the dependencies come from the build cache
// instead of a second full compile.
func GoFlags() string {
	if raceBuild {
		return "-mod=readonly -buildvcs=false -race"
	}
	return "-mod=readonly -buildvcs=false"
}
