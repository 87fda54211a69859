package httpapi

import (
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// HTTP conformance: a known path asked with a method it does not have is
// 405 with Allow listing the ones it has (RFC 9110 §15.5.6), also for
// methods fasthttp does not know, which Fiber would answer with a
// plain-text 400 before any handler or error handler ran.

// routeTable lists each route's path segments and methods, built once
// after every route is registered.
type routeTable struct {
	routes []routePattern
}

type routePattern struct {
	segs    []string // a segment starting with ':' matches any one segment
	methods []string
}

func newRouteTable(app *fiber.App) *routeTable {
	byPath := map[string]*routePattern{}
	var order []string
	for _, r := range app.GetRoutes(true) {
		p, ok := byPath[r.Path]
		if !ok {
			p = &routePattern{segs: strings.Split(strings.Trim(r.Path, "/"), "/")}
			byPath[r.Path] = p
			order = append(order, r.Path)
		}
		if !slices.Contains(p.methods, r.Method) {
			p.methods = append(p.methods, r.Method)
		}
	}
	t := &routeTable{}
	for _, path := range order {
		p := byPath[path]
		if slices.Contains(p.methods, fiber.MethodGet) && !slices.Contains(p.methods, fiber.MethodHead) {
			p.methods = append(p.methods, fiber.MethodHead)
		}
		t.routes = append(t.routes, *p)
	}
	return t
}

// allowed returns the methods of the routes matching path, sorted, or nil
// for a path no route has.
func (t *routeTable) allowed(path string) []string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var out []string
	for _, r := range t.routes {
		if matchSegs(r.segs, segs) {
			for _, m := range r.methods {
				if !slices.Contains(out, m) {
					out = append(out, m)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// has reports whether a route serves method on path (Fiber routes
// without regard to case or a trailing slash, and so does this).
func (t *routeTable) has(method, path string) bool {
	return slices.Contains(t.allowed(path), method)
}

func matchSegs(pattern, segs []string) bool {
	if len(pattern) != len(segs) {
		return false
	}
	for i, p := range pattern {
		if strings.HasPrefix(p, ":") {
			if segs[i] == "" {
				return false
			}
		} else if !strings.EqualFold(p, segs[i]) {
			return false
		}
	}
	return true
}

// knownMethod reports whether Fiber routes method m at all.
func knownMethod(m []byte) bool {
	return slices.Contains(fiber.DefaultMethods, string(m))
}

// wrapUnknownMethods answers requests of methods Fiber does not know
// before Fiber sees them: 405 with Allow on a known path, else 404, both
// with the JSON error body.
func wrapUnknownMethods(app *fiber.App, t *routeTable) {
	next := app.Server().Handler
	app.Server().Handler = func(ctx *fasthttp.RequestCtx) {
		if knownMethod(ctx.Method()) {
			next(ctx)
			return
		}
		ctx.Response.Header.SetContentType(fiber.MIMEApplicationJSON)
		if allow := t.allowed(string(ctx.Path())); allow != nil {
			ctx.Response.Header.Set(fiber.HeaderAllow, strings.Join(allow, ", "))
			ctx.SetStatusCode(fiber.StatusMethodNotAllowed)
			ctx.SetBodyString(`{"error":{"code":"method_not_allowed","message":"this path does not take that method"}}`)
			return
		}
		ctx.SetStatusCode(fiber.StatusNotFound)
		ctx.SetBodyString(`{"error":{"code":"not_found","message":"no such route"}}`)
	}
}
