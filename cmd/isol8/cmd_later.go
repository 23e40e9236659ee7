package main

// Commands whose behaviour comes in later issues. They are registered with
// their documented flags (so --help is complete) and, after validating what
// they can validate locally, report that they are not available yet.

import (
	"github.com/spf13/cobra"
)

func notAvailable(command string) error {
	return errf("%s is not available yet in this build", command)
}

func (a *app) serveCommand(*globals) *cobra.Command {
	var (
		port, key, authDB string
		update            bool
	)
	c := &cobra.Command{
		Use:   "serve",
		Short: "Start the isol8 REST server (not available yet)",
		Long: "Start the isol8 REST server. The port comes from --port, $ISOL8_PORT, $PORT, else 3000;\n" +
			"the master API key from --key or $ISOL8_API_KEY.",
		Args:        maxArgs(0),
		Annotations: needsConfig,
		RunE:        func(*cobra.Command, []string) error { return notAvailable("serve") },
	}
	fs := c.Flags()
	strFlag(fs, &port, "port", "p", "port", "port to listen on (default: $ISOL8_PORT, $PORT, 3000)")
	strFlag(fs, &key, "key", "k", "key", "master API key (default: $ISOL8_API_KEY)")
	strFlag(fs, &authDB, "auth-db", "", "conn", "enable DB-backed API keys (SQLite path or postgres:// / mysql:// URL)")
	fs.BoolVar(&update, "update", false, "accepted for compatibility; ignored (the server is built in)")
	return c
}

func (a *app) sessionCommand(*globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "session",
		Short: "Manage remote sessions (not available yet)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command '%s'", args[0])
			}
			return c.Help()
		},
	}
	var listHost, listKey, stopHost, stopKey string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the sessions of a server",
		Args:  maxArgs(0),
		RunE:  func(*cobra.Command, []string) error { return notAvailable("session list") },
	}
	strFlag(list.Flags(), &listHost, "host", "", "url", "server URL (required)")
	strFlag(list.Flags(), &listKey, "key", "", "key", "API key (default: $ISOL8_API_KEY, then `isol8 login` credentials)")
	list.Flags().BoolVar(&asJSON, "json", false, "print the sessions as JSON")
	stop := &cobra.Command{
		Use:   "stop <id>",
		Short: "Destroy a session",
		Args:  maxArgs(1),
		RunE:  func(*cobra.Command, []string) error { return notAvailable("session stop") },
	}
	strFlag(stop.Flags(), &stopHost, "host", "", "url", "server URL (required)")
	strFlag(stop.Flags(), &stopKey, "key", "", "key", "API key (default: $ISOL8_API_KEY, then `isol8 login` credentials)")
	c.AddCommand(list, stop)
	return c
}
