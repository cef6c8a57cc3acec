package main

import (
	"fmt"

	"github.com/transfer-learning-go/workbook/kernelext/nbcache"
)

func init() {
	register(&command{
		name:  "cache",
		short: "list or clear the notebooks' cache of expensive results (predictions, converted weights)",
		usage: "list | clear | dir",
		run:   runCache,
	})
}

func runCache(args []string) error {
	fs := newFlagSet("cache")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("want one of list, clear, dir")
	}
	dir, err := nbcache.Dir()
	if err != nil {
		return err
	}
	switch rest[0] {
	case "dir":
		fmt.Fprintln(stdout, dir)
	case "list":
		entries, err := nbcache.List()
		if err != nil {
			return err
		}
		var total int64
		for _, e := range entries {
			total += e.Size
			fmt.Fprintf(stdout, "%s  %10s  %-20s %s\n", e.ModTime.Format("2006-01-02 15:04"), sizeString(e.Size), e.Type, e.Key)
		}
		fmt.Fprintf(stdout, "%d entries, %s in %s\n", len(entries), sizeString(total), dir)
	case "clear":
		n, size, err := nbcache.Clear()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %d files (%s) from %s\n", n, sizeString(size), dir)
	default:
		return usagef("unknown subcommand %q (want list, clear or dir)", rest[0])
	}
	return nil
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
