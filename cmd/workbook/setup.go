package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/transfer-learning-go/workbook/internal/nbrun"
	"github.com/transfer-learning-go/workbook/internal/setup"
)

func init() {
	register(&command{
		name:  "setup",
		short: "install and check Jupyter, the GoNB kernel, goimports and gopls for the notebooks",
		usage: "[--check] [--no-smoke]",
		run:   runSetup,
	})
}

// runSetup installs what the notebooks need on a Debian/Ubuntu machine (apt packages need root or
// password-less sudo; otherwise it prints the command to run) and prints one line per step.
func runSetup(args []string) error {
	fs := newFlagSet("setup")
	check := fs.Bool("check", false, "only report what is missing; install nothing")
	noSmoke := fs.Bool("no-smoke", false, "skip running a one-cell notebook through the kernel at the end")
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected arguments %q", rest)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opt := setup.Options{Log: stdout, CheckOnly: *check}
	if !*noSmoke {
		opt.Smoke = smokeTest
	}
	r := setup.Run(ctx, opt)
	fmt.Fprintln(stdout, "\nsetup summary:")
	r.WriteSummary(stdout)
	if !r.OK() {
		return errors.New("some steps failed (see above for what to run)")
	}
	fmt.Fprintln(stdout, "\nready: `workbook jupyter` opens the notebooks; `workbook notebooks run` executes them headless")
	return nil
}

// smokeNotebook is one Go cell; running it proves Jupyter can start the kernel and that the kernel
// finds go and goimports and can build and run a cell.
const smokeNotebook = `{
 "cells": [{"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [],
            "source": ["%%\n", "fmt.Println(\"gonb smoke test ok\")"]}],
 "metadata": {"kernelspec": {"display_name": "Go (gonb)", "language": "go", "name": "gonb"}},
 "nbformat": 4, "nbformat_minor": 5
}
`

func smokeTest(ctx context.Context, env []string) error {
	dir, err := os.MkdirTemp("", "workbook-smoke-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	nbPath := filepath.Join(dir, "smoke.ipynb")
	if err := os.WriteFile(nbPath, []byte(smokeNotebook), 0o644); err != nil {
		return err
	}
	start := time.Now()
	res, err := nbrun.Run(ctx, nbPath, nbrun.Options{
		OutDir: filepath.Join(dir, "out"), NoHTML: true, Env: env, CellTimeout: 5 * time.Minute,
	})
	if err != nil {
		return err
	}
	if got := res.Cells.Cells[0].Stdout; !strings.Contains(got, "gonb smoke test ok") {
		return fmt.Errorf("the cell printed %q", got)
	}
	fmt.Fprintf(stdout, "   | kernel ran a Go cell in %.1fs\n", time.Since(start).Seconds())
	return nil
}
