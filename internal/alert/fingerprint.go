package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// modulePath is this program's module path, found from this package's own
// import path so a clone under another module name keeps working:
// "github.com/prodready/service/internal/alert" -> "github.com/prodready/service".
var modulePath = strings.TrimSuffix(reflect.TypeFor[Reporter]().PkgPath(), "/internal/alert")

// topFrames is how many in-app frames identify where an error happened.
const topFrames = 3

// fingerprint groups reports that are "the same error": the kind, the type
// of the error (the innermost wrapped error, or the panic value's type), and
// where it happened:
//   - with a stack: the top in-app frames (functions of this module) below
//     the panic, by function name only. Line numbers are left out on purpose,
//     so a redeploy that shifts lines, or an edit elsewhere in the file,
//     keeps grouping with the mails already in the inbox; two different
//     panics in one function still split by type.
//   - without one (a returned error has no stack in Go): the method and
//     route template, which locate the handler.
//
// Error texts are left out: they carry IDs and addresses that differ on
// every occurrence. Log records are the exception: their message is a
// constant written in the code, so it is part of their fingerprint, and so
// is a check's ("check database:responseTime is failing").
func fingerprint(rep Report) string {
	var b strings.Builder
	b.WriteString(rep.Kind)
	b.WriteByte(0)
	b.WriteString(errorType(rep))
	b.WriteByte(0)
	if rep.Kind == KindErrorLog || rep.Kind == KindCheck {
		b.WriteString(rep.Message)
		b.WriteByte(0)
	}
	if frames := appFrames(rep.Stack, topFrames); len(frames) > 0 {
		b.WriteString(strings.Join(frames, "\n"))
	} else {
		b.WriteString(rep.Method + " " + rep.Route)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

// errorType names the type that identifies the error: for a panic, the
// value's type (string, runtime.boundsError, *errors.errorString ...); for
// an error, the innermost error of its Unwrap chain (*pgconn.PgError rather
// than the *fmt.wrapError around it).
func errorType(rep Report) string {
	v := rep.Value
	if rep.Err != nil {
		v = rep.Err
	}
	if err, ok := v.(error); ok {
		for {
			inner := errors.Unwrap(err)
			if inner == nil {
				break
			}
			err = inner
		}
		v = err
	}
	if v == nil {
		return "none"
	}
	return fmt.Sprintf("%T", v)
}

// appFrames returns the function names of up to n frames of this module
// from a goroutine dump (the text debug.Stack returns). Only frames below
// the last panic are considered: those above it are the recovery's own, the
// same for every panic. The server's recovery middleware, which calls the
// rest of the chain, is plumbing and skipped. When the dump has no frame of
// this module, the top frames of any package are used.
func appFrames(stack []byte, n int) []string {
	funcs := stackFuncs(string(stack))
	for i := len(funcs) - 1; i >= 0; i-- {
		if funcs[i] == "panic" {
			funcs = funcs[i+1:]
			break
		}
	}
	var app, top []string
	for _, f := range funcs {
		if strings.HasPrefix(f, "runtime.") {
			continue
		}
		if len(top) < n {
			top = append(top, f)
		}
		if isAppFunc(f) && !isPlumbing(f) {
			app = append(app, f)
			if len(app) == n {
				break
			}
		}
	}
	if len(app) == 0 {
		return top
	}
	return app
}

func isAppFunc(f string) bool {
	return strings.HasPrefix(f, modulePath+"/") || strings.HasPrefix(f, modulePath+".")
}

func isPlumbing(f string) bool {
	return strings.HasPrefix(f, modulePath+"/internal/server.recovery")
}

// stackFuncs lists the function of each frame in a goroutine dump, without
// arguments: "github.com/x/y.(*T).M(0xc000010, ...)" -> "github.com/x/y.(*T).M".
// Frame lines alternate with indented "file:line" lines; the goroutine
// header and the "created by" trailer are not frames.
func stackFuncs(stack string) []string {
	var funcs []string
	for line := range strings.Lines(stack) {
		line = strings.TrimRight(line, "\r\n")
		if line == "" || line[0] == '\t' || line[0] == ' ' ||
			strings.HasPrefix(line, "goroutine ") || strings.HasPrefix(line, "created by ") {
			continue
		}
		if i := strings.LastIndexByte(line, '('); i > 0 && strings.HasSuffix(line, ")") {
			line = line[:i]
		}
		funcs = append(funcs, line)
	}
	return funcs
}
