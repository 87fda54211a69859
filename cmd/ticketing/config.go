package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ticketing/ticketing/cmd/ticketing/cli"
	"github.com/ticketing/ticketing/internal/errs"
	"github.com/ticketing/ticketing/services/settings"
	settingsapi "github.com/ticketing/ticketing/services/settings/natsapi"
)

const configUsage = `usage:
  ticketing config get [name]                         the settings (or one), their values, defaults and docs
  ticketing config set <name> <value> [--scope id]    set a setting, for everyone or one edge or event
  ticketing config unset <name> [--scope id]          remove a value (back to everyone's, or the start-up value)
  ticketing config flags list                         the feature flags
  ticketing config flags get <key>                    one flag's definition (JSON)
  ticketing config flags set <file.json | - | JSON>   create or replace a flag from its JSON definition
  ticketing config flags delete <key>                 delete a flag (code falls back to its defaults)

Every change is validated by the core's config service before it is
written, applied by every core and edge within a second, and audited as a
domain event (ticketing.settings.changed, ticketing.flags.changed).

flags (anywhere on the line):`

// runConfig is `ticketing config`: a client of the core's config and flags
// micro services.
func runConfig(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	conn := cli.AddToolConnFlags(fs)
	by := fs.String("by", defaultBy(), "who makes the change (recorded with it and in its audit event)")
	note := fs.String("note", "", "why (recorded with the change and in its audit event)")
	scope := fs.String("scope", "", "set or unset the value for one edge (its name) or one event (its id) only")
	revision := fs.Uint64("revision", 0, "refuse the change unless the value is still at this revision (from config get)")
	asJSON := fs.Bool("json", false, "print JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the core")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), configUsage)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	if _, err := conn.Security().Load(slog.New(slog.NewTextHandler(os.Stderr, nil)), ""); err != nil {
		return err
	}
	nc, err := conn.Connect("ticketing-config")
	if err != nil {
		return fmt.Errorf("core NATS at %s: %w", conn.URL(), err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := &settingsapi.Client{NC: nc, Timeout: *timeout}
	out := os.Stdout
	want := func(n int, what string) error {
		if len(pos) != n {
			return fmt.Errorf("usage: ticketing config %s", what)
		}
		return nil
	}
	switch pos[0] {
	case "get", "list":
		if len(pos) > 2 {
			return errors.New("usage: ticketing config get [name]")
		}
		name := ""
		if len(pos) == 2 {
			name = pos[1]
		}
		list, err := c.Settings(ctx, name)
		if err != nil {
			return explain(err)
		}
		if *asJSON {
			return printJSON(out, list)
		}
		printSettings(out, list, name != "")
		return nil
	case "set":
		if err := want(3, "set <name> <value> [--scope id]"); err != nil {
			return err
		}
		s, err := c.Set(ctx, settings.SetRequest{Name: pos[1], Scope: *scope, Text: pos[2], By: *by, Note: *note, Revision: *revision})
		if err != nil {
			return explain(err)
		}
		if *asJSON {
			return printJSON(out, s)
		}
		fmt.Fprintf(out, "%s = %s (revision %d)\n", settingKey(s), s.Value, s.Revision)
		return nil
	case "unset":
		if err := want(2, "unset <name> [--scope id]"); err != nil {
			return err
		}
		s, err := c.Unset(ctx, settings.UnsetRequest{Name: pos[1], Scope: *scope, By: *by, Note: *note, Revision: *revision})
		if err != nil {
			return explain(err)
		}
		if *asJSON {
			return printJSON(out, s)
		}
		fmt.Fprintf(out, "%s unset\n", settingKey(s))
		return nil
	case "flags":
		return runConfigFlags(ctx, c, pos[1:], *by, *note, *revision, *asJSON, out)
	}
	return fmt.Errorf("unknown config command %q (get, set, unset, flags)", pos[0])
}

func runConfigFlags(ctx context.Context, c *settingsapi.Client, pos []string, by, note string, revision uint64, asJSON bool, out io.Writer) error {
	if len(pos) == 0 {
		return errors.New("usage: ticketing config flags list|get <key>|set <file.json|-|JSON>|delete <key>")
	}
	switch {
	case pos[0] == "list" && len(pos) == 1:
		list, err := c.Flags(ctx, "")
		if err != nil {
			return explain(err)
		}
		if asJSON {
			return printJSON(out, list)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tENABLED\tDEFAULT\tRULES\tROLLOUT\tREVISION\tBY\tAT")
		for _, f := range list {
			var d struct {
				Key            string            `json:"key"`
				Enabled        bool              `json:"enabled"`
				DefaultVariant string            `json:"default_variant"`
				Rules          []json.RawMessage `json:"rules"`
				Rollout        []struct {
					Variant string `json:"variant"`
					Weight  int    `json:"weight"`
				} `json:"rollout"`
			}
			_ = json.Unmarshal(f.Definition, &d)
			var split []string
			for _, s := range d.Rollout {
				split = append(split, fmt.Sprintf("%s:%d", s.Variant, s.Weight))
			}
			fmt.Fprintf(tw, "%s\t%v\t%s\t%d\t%s\t%d\t%s\t%s\n", d.Key, d.Enabled, d.DefaultVariant, len(d.Rules),
				orDash(strings.Join(split, ",")), f.Revision, f.By, formatAt(f.At))
		}
		return tw.Flush()
	case pos[0] == "get" && len(pos) == 2:
		list, err := c.Flags(ctx, pos[1])
		if err != nil {
			return explain(err)
		}
		if asJSON {
			return printJSON(out, list[0])
		}
		var b bytes.Buffer
		_ = json.Indent(&b, list[0].Definition, "", "  ")
		// The definition alone on standard output, ready to edit and set
		// again; when and by whom on standard error.
		fmt.Fprintln(out, b.String())
		fmt.Fprintf(os.Stderr, "# revision %d, by %s at %s %s\n", list[0].Revision, list[0].By, formatAt(list[0].At), list[0].Note)
		return nil
	case pos[0] == "set" && len(pos) == 2:
		def, err := readDefinition(pos[1])
		if err != nil {
			return err
		}
		f, err := c.SetFlag(ctx, settings.SetFlagRequest{Definition: def, By: by, Note: note, Revision: revision})
		if err != nil {
			return explain(err)
		}
		if asJSON {
			return printJSON(out, f)
		}
		var d struct {
			Key string `json:"key"`
		}
		_ = json.Unmarshal(f.Definition, &d)
		fmt.Fprintf(out, "flag %s set (revision %d)\n", d.Key, f.Revision)
		return nil
	case pos[0] == "delete" && len(pos) == 2:
		if err := c.DeleteFlag(ctx, settings.DeleteFlagRequest{Key: pos[1], By: by, Note: note, Revision: revision}); err != nil {
			return explain(err)
		}
		fmt.Fprintf(out, "flag %s deleted\n", pos[1])
		return nil
	}
	return errors.New("usage: ticketing config flags list|get <key>|set <file.json|-|JSON>|delete <key>")
}

// readDefinition reads a flag definition: inline JSON, "-" for standard
// input, or a file.
func readDefinition(arg string) (json.RawMessage, error) {
	var b []byte
	var err error
	switch {
	case strings.HasPrefix(strings.TrimSpace(arg), "{"):
		b = []byte(arg)
	case arg == "-":
		b, err = io.ReadAll(io.LimitReader(os.Stdin, settings.MaxEntrySize+1))
	default:
		b, err = os.ReadFile(arg)
	}
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("the flag definition is not JSON")
	}
	return b, nil
}

// explain turns a service error into what an operator reads: its message,
// and for a refusal that nothing was changed.
func explain(err error) error {
	switch errs.KindOf(err) {
	case errs.Invalid, errs.NotFound, errs.TooLarge, errs.Conflict:
		return fmt.Errorf("refused, nothing changed: %s", errs.Message(err))
	case errs.Unavailable:
		return fmt.Errorf("%s", errs.Message(err))
	}
	return err
}

func printSettings(out io.Writer, list []settings.Setting, docs bool) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCOPE\tVALUE\tDEFAULT\tREVISION\tBY\tAT\tNOTE")
	for _, s := range list {
		scope := s.Scope
		if scope == "" {
			scope = "*"
		}
		rev := "-"
		if s.Revision != 0 {
			rev = fmt.Sprint(s.Revision)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, scope, orDash(string(s.Value)), s.Default, rev, orDash(s.By), formatAt(s.At), s.Note)
	}
	_ = tw.Flush()
	if !docs || len(list) == 0 {
		return
	}
	s := list[0]
	fmt.Fprintf(out, "\n%s (%s", s.Name, s.Type)
	if s.Min != nil {
		fmt.Fprintf(out, ", %s to %s", *s.Min, *s.Max)
	}
	if s.ScopeKind != "" {
		fmt.Fprintf(out, ", may be set per %s with --scope", s.ScopeKind)
	}
	fmt.Fprintf(out, "): %s\n", s.Doc)
	if s.Flag != "" {
		fmt.Fprintf(out, "Not set, each process keeps its start-up value (%s).\n", s.Flag)
	}
}

func settingKey(s settings.Setting) string {
	if s.Scope == "" {
		return s.Name
	}
	return s.Name + " --scope " + s.Scope
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatAt(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// defaultBy is who runs the command: $USER@host.
func defaultBy() string {
	user := os.Getenv("USER")
	if user == "" {
		user = "unknown"
	}
	host, _ := os.Hostname()
	if host == "" {
		return user
	}
	return user + "@" + host
}

// parseInterspersed parses flags anywhere among the positional arguments
// (`config set edge.drain true --scope edge-2`), applies TICKETING_*
// environment variables (cli.ApplyEnv), and returns the positional
// arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return pos, cli.ApplyEnv(fs)
}
