// Command workbook is the course's command-line tool: one binary whose subcommands run the
// steps of the Chapter 8 notebooks (preprocess images, predict, print a model summary,
// fine-tune, run and grade notebooks, set up a machine).
//
// Usage:
//
//	workbook <command> [flags] [arguments]
//	workbook help [command]
//
// Each subcommand lives in its own file and registers itself from an init function, so adding
// one touches nothing else.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand.
type command struct {
	name  string // what follows "workbook"
	short string // one-line description for "workbook help"
	usage string // arguments synopsis, e.g. "--out FILE IMAGE..."
	// run executes the command with the arguments after its name. Returning a usageError
	// makes main print the command's usage and exit with status 2.
	run func(args []string) error
}

var commands = map[string]*command{}

// Where commands write; tests swap them.
var (
	stdout io.Writer = os.Stdout
	stderr io.Writer = os.Stderr
)

// register adds a subcommand; call it from an init function in the command's file.
func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("workbook: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// usageError reports a mistake in how a command was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func main() {
	os.Exit(run(os.Args[1:]))
}

// run dispatches to a subcommand and returns the process exit status: 0 on success, 1 when
// the command failed, 2 for usage mistakes.
func run(args []string) int {
	if len(args) == 0 {
		printHelp(stderr)
		return 2
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "-help" {
		name = "help"
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "workbook: unknown command %q\n\n", name)
		printHelp(stderr)
		return 2
	}
	err := c.run(args[1:])
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "workbook %s: %v\nusage: workbook %s %s\nRun 'workbook help %s' for details.\n",
			c.name, err, c.name, c.usage, c.name)
		return 2
	default:
		fmt.Fprintf(stderr, "workbook %s: %v\n", c.name, err)
		return 1
	}
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "workbook runs the Chapter 8 transfer-learning workbook steps from the command line.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage:")
	fmt.Fprintln(w, "\tworkbook <command> [flags] [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "\t%-12s %s\n", n, commands[n].short)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'workbook help <command>' for a command's flags.")
}

func init() {
	register(&command{
		name:  "help",
		short: "show the commands, or one command's usage and flags",
		usage: "[command]",
		run: func(args []string) error {
			switch len(args) {
			case 0:
				printHelp(stdout)
				return nil
			case 1:
				c, ok := commands[args[0]]
				if !ok {
					return usagef("unknown command %q", args[0])
				}
				fmt.Fprintf(stdout, "usage: workbook %s %s\n\n%s\n", c.name, c.usage, capitalize(c.short))
				if c.name != "help" {
					// Commands print their flags when asked for -h.
					fmt.Fprintln(stdout)
					saved := stderr
					stderr = stdout
					defer func() { stderr = saved }()
					if err := c.run([]string{"-h"}); err != nil && !errors.Is(err, flag.ErrHelp) {
						return err
					}
				}
				return nil
			default:
				return usagef("help takes at most one command name")
			}
		},
	})
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// newFlagSet returns a flag set for a command that reports errors instead of exiting and
// prints its defaults under a "Flags:" heading.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("workbook "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args with fs, allowing flags and positional arguments in any order
// ("workbook preprocess a.jpg --out b.npy"); "--" ends flag parsing. On -h it prints the
// flags to stderr and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stderr)
				fmt.Fprintln(stderr, "Flags:")
				fs.PrintDefaults()
				fs.SetOutput(io.Discard)
				return nil, flag.ErrHelp
			}
			return nil, usageError{err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}
		// flag stops at the first non-flag argument; "--" is consumed and ends flags.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(positional, rest...), nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
