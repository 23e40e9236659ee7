package auth

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helperEnv makes the test binary a helper process that opens the store
// named by the variable, creates one key and prints its token.
const helperEnv = "ISOL8_AUTH_TEST_OPEN_HELPER"

func TestMain(m *testing.M) {
	if conn := os.Getenv(helperEnv); conn != "" {
		os.Exit(openHelper(conn, os.Getenv(helperEnv+"_GO")))
	}
	os.Exit(m.Run())
}

// openHelper waits for the go file (so that all helpers open at once),
// then opens conn and creates a key.
func openHelper(conn, goFile string) int {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(goFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "helper: no go signal")
			return 2
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, conn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	defer s.Close()
	c, err := s.Create(ctx, "helper", "", time.Hour)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	fmt.Println(c.Token)
	return 0
}

// Separate processes opening one new SQLite file at the same moment (SQLite
// locks between processes with file locks, not in memory): every one
// succeeds, the schema is migrated once, and all keys land in one table.
func TestSQLiteProcessesMigrateOnce(t *testing.T) {
	dir := t.TempDir()
	conn := filepath.Join(dir, "db", "auth.db")
	goFile := filepath.Join(dir, "go")
	const n = 6
	cmds := make([]*exec.Cmd, n)
	outs := make([]*strings.Builder, n)
	for i := range n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+conn, helperEnv+"_GO="+goFile)
		outs[i] = &strings.Builder{}
		cmd.Stdout = outs[i]
		cmd.Stderr = outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var tokens []string
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper %d: %v\n%s", i, err, outs[i])
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(outs[i].String()))
		for sc.Scan() {
			if wellFormed(sc.Text()) {
				tokens = append(tokens, sc.Text())
			}
		}
	}
	if t.Failed() {
		return
	}
	s := open(t, conn)
	for _, tok := range tokens {
		if _, err := s.Verify(t.Context(), tok); err != nil {
			t.Errorf("a helper's key: %v", err)
		}
	}
	if len(tokens) != n {
		t.Errorf("%d tokens from %d helpers", len(tokens), n)
	}
	db, err := openSQLite(conn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wantVersions(t, db, []int{1})
}
