package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/isol8/isol8/audit"
	"github.com/isol8/isol8/config"
	"github.com/isol8/isol8/engine"
	"github.com/isol8/isol8/remotecode"
)

// wireProvenance gives a local run the config's remote-code policy, its
// network guard switch and, when audit.enabled, an audit log. The caller
// closes the returned logger (nil without audit) after the engine stopped.
func (a *app) wireProvenance(o *engine.Options, cfg *config.Config) (*audit.Logger, error) {
	if cfg == nil {
		return nil, nil
	}
	rc := remotecode.FromConfig(cfg.RemoteCode)
	o.RemoteCode = &rc
	o.AllowPrivateDestinations = cfg.Network.AllowPrivateDestinations
	if !cfg.Audit.Enabled {
		return nil, nil
	}
	l, err := audit.New(a.auditConfig(cfg))
	if err != nil {
		return nil, errf("%s", err)
	}
	o.Audit = l
	return l, nil
}

func (a *app) auditDir(cfg *config.Config) string {
	logDir := ""
	if cfg != nil {
		logDir = cfg.Audit.LogDir
	}
	return audit.ResolveDir(logDir, a.env["ISOL8_AUDIT_DIR"], a.cwd)
}

func (a *app) auditConfig(cfg *config.Config) audit.Config {
	return audit.Config{
		Destination:    cfg.Audit.Destination,
		Dir:            a.auditDir(cfg),
		IncludeCode:    cfg.Audit.IncludeCode,
		IncludeOutput:  cfg.Audit.IncludeOutput,
		TrackResources: cfg.Audit.TrackResources,
		RetentionDays:  cfg.Audit.RetentionDays,
		Stdout:         a.stderr, // stdout carries the program's output
	}
}

// closeAudit flushes the run's audit log (bounded like the engine's stop).
func (a *app) closeAudit(l *audit.Logger) {
	if l == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		fmt.Fprintf(a.stderr, "[WARN] Failed to record audit log: %s\n", err)
	}
}

// auditFlags are `isol8 audit tail|query`'s flags.
type auditFlags struct {
	dir, since, until, runtime, outcome, tenant, typ string
	lines                                            int
	asJSON                                           bool
}

func (a *app) auditCommand(g *globals) *cobra.Command {
	c := groupCommand("audit", "Read the audit log (tail, query)",
		"Read the audit log that executions write when audit.enabled is set: one JSON record per\n"+
			"execution and per blocked network request. The directory is audit.logDir, else\n"+
			"$ISOL8_AUDIT_DIR, else ./.isol8_audit.")
	tf := &auditFlags{}
	tail := &cobra.Command{
		Use:         "tail",
		Short:       "Print the last records",
		Args:        maxArgs(0),
		Annotations: needsConfig,
		RunE:        func(c *cobra.Command, _ []string) error { return a.auditRead(g, tf, true) },
	}
	qf := &auditFlags{}
	query := &cobra.Command{
		Use:         "query",
		Short:       "Print the records that match filters",
		Args:        maxArgs(0),
		Annotations: needsConfig,
		RunE:        func(c *cobra.Command, _ []string) error { return a.auditRead(g, qf, false) },
	}
	for _, x := range []struct {
		c *cobra.Command
		f *auditFlags
	}{{tail, tf}, {query, qf}} {
		fs := x.c.Flags()
		strFlag(fs, &x.f.dir, "dir", "", "path", "audit log directory (default: audit.logDir, $ISOL8_AUDIT_DIR, ./.isol8_audit)")
		strFlag(fs, &x.f.since, "since", "", "time", "only records at or after this time (RFC 3339, or a duration such as 1h)")
		strFlag(fs, &x.f.until, "until", "", "time", "only records at or before this time (RFC 3339, or a duration such as 10m)")
		strFlag(fs, &x.f.runtime, "runtime", "r", "name", "only this runtime")
		strFlag(fs, &x.f.outcome, "outcome", "", "outcome", "only this outcome: success, failure, timeout, oom, error")
		strFlag(fs, &x.f.tenant, "tenant", "", "id", "only this tenant")
		strFlag(fs, &x.f.typ, "type", "", "type", "only this record type: execution, network_blocked")
		fs.BoolVar(&x.f.asJSON, "json", false, "print records as JSON lines")
	}
	tail.Flags().IntVarP(&tf.lines, "lines", "n", 20, "number of records to print")
	query.Flags().IntVar(&qf.lines, "limit", 0, "print at most this many records (0: all)")
	c.AddCommand(tail, query)
	return c
}

var outcomes = []string{audit.OutcomeSuccess, audit.OutcomeFailure, audit.OutcomeTimeout, audit.OutcomeOOM, audit.OutcomeError}

// auditFilter validates the flags into a filter.
func (a *app) auditFilter(f *auditFlags) (audit.Filter, error) {
	flt := audit.Filter{Runtime: f.runtime, Outcome: f.outcome, Tenant: f.tenant, Type: f.typ}
	var err error
	if flt.Since, err = a.parseWhen(f.since); err != nil {
		return flt, errf("Invalid --since value: %q. Use RFC 3339 (2026-01-02T15:04:05Z) or a duration (1h).", f.since)
	}
	if flt.Until, err = a.parseWhen(f.until); err != nil {
		return flt, errf("Invalid --until value: %q. Use RFC 3339 (2026-01-02T15:04:05Z) or a duration (1h).", f.until)
	}
	if f.outcome != "" && !contains(outcomes, f.outcome) {
		return flt, errf("Invalid --outcome value: %q. Expected one of: %s", f.outcome, strings.Join(outcomes, ", "))
	}
	if f.typ != "" && f.typ != audit.TypeExecution && f.typ != audit.TypeNetworkBlocked {
		return flt, errf("Invalid --type value: %q. Expected execution or network_blocked", f.typ)
	}
	if f.lines < 0 {
		return flt, errf("Invalid record count: %d. Must be at least 0", f.lines)
	}
	return flt, nil
}

// parseWhen reads an RFC 3339 time or a duration before now ("" = zero).
func (a *app) parseWhen(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("bad time %q", s)
	}
	return a.now().Add(-d), nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// auditRead prints the matching records: the last f.lines for tail, the
// first f.lines (0: all) for query.
func (a *app) auditRead(g *globals, f *auditFlags, tail bool) error {
	flt, err := a.auditFilter(f)
	if err != nil {
		return err
	}
	dir := f.dir
	if dir == "" {
		dir = a.auditDir(g.cfg)
	} else {
		dir = a.abs(dir)
	}
	var recs []*audit.Record
	_, err = audit.Read(dir, flt, func(r *audit.Record) bool {
		recs = append(recs, r)
		if tail && f.lines > 0 && len(recs) > f.lines {
			recs = recs[1:]
		}
		return tail || f.lines == 0 || len(recs) < f.lines
	})
	if err != nil {
		return errf("Cannot read audit log in %s: %s", dir, pathErrReason(err))
	}
	if tail && f.lines == 0 {
		recs = nil
	}
	for _, r := range recs {
		if f.asJSON {
			line, _ := json.Marshal(r)
			fmt.Fprintln(a.stdout, string(line))
			continue
		}
		fmt.Fprintln(a.stdout, humanRecord(r))
	}
	return nil
}

// humanRecord is one record on one line.
func humanRecord(r *audit.Record) string {
	if r.Type == audit.TypeNetworkBlocked && r.Blocked != nil {
		return fmt.Sprintf("%s  BLOCKED  %s %s:%d (%s) execution=%s tenant=%s", r.Timestamp, r.Blocked.Method,
			r.Blocked.Host, r.Blocked.Port, r.Blocked.Reason, dash(r.ExecutionID), dash(r.Tenant))
	}
	hash := r.CodeHash
	if len(hash) > 12 {
		hash = hash[:12]
	}
	src := "-"
	if r.Source != nil {
		src = r.Source.Kind
		if r.Source.URL != "" {
			src += " " + r.Source.URL
		}
	}
	line := fmt.Sprintf("%s  %-7s  %-6s exit=%s %dms sha256=%s source=%s tenant=%s", r.Timestamp, r.Outcome, r.Runtime,
		strconv.Itoa(r.ExitCode), r.DurationMs, dash(hash), src, dash(r.Tenant))
	if r.Error != "" {
		line += "  error: " + r.Error
	}
	return line
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
