package main

import (
	_ "github.com/olekukonko/tablewriter"
	_ "github.com/spf13/cobra"
	_ "golang.org/x/crypto/acme"
	_ "golang.org/x/sync/errgroup"
	_ "golang.org/x/term"
	_ "k8s.io/cli-runtime/pkg/genericclioptions"
	_ "k8s.io/client-go/kubernetes"
	_ "sigs.k8s.io/yaml"
)

func main() {}
