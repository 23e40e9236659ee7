package isol8_test

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"testing"

	"github.com/isol8/isol8"
	"github.com/isol8/isol8/internal/testenv"
)

// The examples need root, containerd and the runtime images. Without them
// (and outside `make test`, which sets ISOL8_TEST_STRICT), and always under
// -short, the package's tests are skipped as a whole, because Go cannot skip
// a single Example.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("skipping isol8 examples: integration tests are skipped with -short")
		os.Exit(0)
	}
	if os.Geteuid() != 0 && !testenv.Strict() {
		fmt.Println("skipping isol8 examples: they need root and containerd (run `make test`)")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func testOptions(o isol8.Options) isol8.Options {
	o.InitPath = os.Getenv("ISOL8_INIT_PATH")
	o.Containerd.Address = testenv.ContainerdAddress()
	return o
}

func Example() {
	ctx := context.Background()
	eng, err := isol8.New(testOptions(isol8.Options{}))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Stop(ctx)

	res, err := eng.Execute(ctx, isol8.Request{Runtime: "python", Code: "print(6 * 7)"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.ExitCode, res.Stdout)
	// Output: 0 42
}

func ExampleEngine_ExecuteStream() {
	ctx := context.Background()
	eng, err := isol8.New(testOptions(isol8.Options{}))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Stop(ctx)

	events, err := eng.ExecuteStream(ctx, isol8.Request{Runtime: "bash", Code: "echo one; echo two >&2; exit 3"})
	if err != nil {
		log.Fatal(err)
	}
	for ev := range events {
		fmt.Printf("%s %q\n", ev.Type, ev.Data)
	}
	// Unordered output:
	// stdout "one\n"
	// stderr "two\n"
	// exit "3"
}

func ExampleEngine_PutFile() {
	ctx := context.Background()
	eng, err := isol8.New(testOptions(isol8.Options{Mode: isol8.ModePersistent}))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Stop(ctx)

	// The persistent sandbox exists after the first execution.
	if _, err := eng.Execute(ctx, isol8.Request{Runtime: "python", Code: "open('/sandbox/greeting.txt', 'w').write('hello')"}); err != nil {
		log.Fatal(err)
	}
	if err := eng.PutFile(ctx, "/sandbox/name.txt", []byte("isol8")); err != nil {
		log.Fatal(err)
	}
	res, err := eng.Execute(ctx, isol8.Request{Runtime: "python", Code: "print(open('/sandbox/greeting.txt').read(), open('/sandbox/name.txt').read())"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Stdout)
	data, err := eng.GetFile(ctx, "/sandbox/greeting.txt")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(data))
	// Output:
	// hello isol8
	// hello
}

func ExampleRequest_timeout() {
	ctx := context.Background()
	eng, err := isol8.New(testOptions(isol8.Options{}))
	if err != nil {
		log.Fatal(err)
	}
	defer eng.Stop(ctx)

	res, err := eng.Execute(ctx, isol8.Request{Runtime: "python", Code: "import time; time.sleep(60)", TimeoutMs: 500})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.ExitCode)
	fmt.Println(res.Stderr)
	// Output:
	// 137
	// --- EXECUTION TIMED OUT ---
}

// A process that runs many engines makes one host: its engines share the
// backend connection, the MaxConcurrent limit and the warm pools.
func ExampleNewHost() {
	ctx := context.Background()
	host, err := isol8.NewHost(isol8.HostOptions{
		MaxConcurrent: 2,
		InitPath:      os.Getenv("ISOL8_INIT_PATH"),
		Containerd:    isol8.ContainerdOptions{Address: testenv.ContainerdAddress()},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer host.Stop(ctx) // stops every engine of the host

	// A client's session: only what a client may ask for.
	session, err := host.Session(isol8.ClientOptions{Secrets: map[string]string{"TOKEN": "s3cr3t"}})
	if err != nil {
		log.Fatal(err)
	}
	res, err := session.Execute(ctx, isol8.Request{Runtime: "bash", Code: "echo token=$TOKEN"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Stdout)

	// Operator code: an engine with the host's wiring and its own policy.
	eng, err := host.Engine(isol8.Options{MemoryLimit: "256m"})
	if err != nil {
		log.Fatal(err)
	}
	res, err = eng.Execute(ctx, isol8.Request{Runtime: "python", Code: "print(6 * 7)"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Stdout)
	// Output:
	// token=***
	// 42
}
