package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/isol8/isol8/client"
)

// groupCommand is a command that only holds subcommands: alone it prints
// its help, with an unknown subcommand it is a usage error.
func groupCommand(use, short, long string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command '%s'", args[0])
			}
			return c.Help()
		},
	}
}

func (a *app) sessionCommand(g *globals) *cobra.Command {
	c := groupCommand("session", "List and stop the sessions of an isol8 server", "")
	var listHost, listKey, stopHost, stopKey string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the sessions of a server",
		Args:  maxArgs(0),
		RunE: func(c *cobra.Command, _ []string) error {
			return a.sessionList(c, listHost, listKey, asJSON)
		},
	}
	strFlag(list.Flags(), &listHost, "host", "", "url", "server URL (required)")
	strFlag(list.Flags(), &listKey, "key", "", "key", "API key (default: $ISOL8_API_KEY, then `isol8 login` credentials)")
	list.Flags().BoolVar(&asJSON, "json", false, "print the sessions as JSON")
	stop := &cobra.Command{
		Use:   "stop <id>",
		Short: "Destroy a session",
		Args:  maxArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return a.sessionStop(c, args, stopHost, stopKey)
		},
	}
	strFlag(stop.Flags(), &stopHost, "host", "", "url", "server URL (required)")
	strFlag(stop.Flags(), &stopKey, "key", "", "key", "API key (default: $ISOL8_API_KEY, then `isol8 login` credentials)")
	c.AddCommand(list, stop)
	return c
}

// sessionClient resolves the server (--host, then ISOL8_HOST) and key of
// `isol8 session`.
func (a *app) sessionClient(c *cobra.Command, host, key string) (*client.Client, error) {
	host = a.remoteHost(host, nil)
	if host == "" {
		return nil, usageErrorf("required option '%s' not specified", flagSpec(c.Flags().Lookup("host")))
	}
	k, err := a.resolveAPIKey(host, key)
	if err != nil {
		return nil, err
	}
	cl, err := client.New(client.Options{Host: host, APIKey: k})
	if err != nil {
		return nil, errf("%s", err)
	}
	return cl, nil
}

// sessionList is `isol8 session list`.
func (a *app) sessionList(c *cobra.Command, host, key string, asJSON bool) error {
	cl, err := a.sessionClient(c, host, key)
	if err != nil {
		return err
	}
	list, err := cl.ListSessions(c.Context())
	if err != nil {
		return errf("%s", err)
	}
	if asJSON {
		if list == nil {
			list = []client.Session{}
		}
		data, _ := json.MarshalIndent(list, "", "  ")
		fmt.Fprintln(a.stdout, string(data))
		return nil
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "[INFO] No active sessions.")
		return nil
	}
	fmt.Fprintf(a.stdout, "\n  %d active session(s):\n\n", len(list))
	for _, s := range list {
		state := "idle"
		if s.IsActive {
			state = "running"
		}
		when := s.LastAccessedAt
		if t, err := time.Parse(time.RFC3339Nano, s.LastAccessedAt); err == nil {
			when = t.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(a.stdout, "  %s  [%s]  last accessed: %s\n", s.ID, state, when)
	}
	fmt.Fprintln(a.stdout)
	return nil
}

// sessionStop is `isol8 session stop <id>`.
func (a *app) sessionStop(c *cobra.Command, args []string, host, key string) error {
	if len(args) == 0 {
		return usageErrorf("missing required argument 'id'")
	}
	cl, err := a.sessionClient(c, host, key)
	if err != nil {
		return err
	}
	if err := cl.DeleteSession(c.Context(), args[0]); err != nil {
		return errf("%s", err)
	}
	fmt.Fprintf(a.stdout, "[OK] Session \"%s\" destroyed.\n", args[0])
	return nil
}
