package main

import (
	"fmt"

	"github.com/transfer-learning-go/workbook/kernelext/applications"
)

func init() {
	register(&command{
		name:  "summary",
		short: "print a model's Keras model.summary()",
		usage: "--model vgg16|resnet50 [--include-top=false] [--pooling avg|max]",
		run:   runSummary,
	})
}

// runSummary prints what Keras 2.3 prints for VGG16(...).summary() or ResNet50(...).summary().
// It needs no weights: the summary depends on the architecture only.
func runSummary(args []string) error {
	fs := newFlagSet("summary")
	model := fs.String("model", "", "vgg16 or resnet50")
	includeTop := fs.Bool("include-top", true, "include the classifier layers (Keras include_top)")
	pooling := fs.String("pooling", "", `global pooling without the top: "avg" or "max" (Keras pooling)`)
	rest, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *model == "":
		return usagef("--model is required (vgg16 or resnet50)")
	case len(rest) > 0:
		return usagef("unexpected arguments %q", rest)
	case *includeTop && *pooling != "":
		return usagef("--pooling applies only with --include-top=false")
	}
	arch, err := applications.ArchitectureByName(*model, *includeTop, *pooling, nil)
	if err != nil {
		return usagef("%v", err)
	}
	fmt.Fprint(stdout, arch.Summary())
	return nil
}
