package main

import "github.com/spf13/cobra"

func newTopicsCommand() *cobra.Command {
	return &cobra.Command{Use: "topics", Short: "List, create, describe, alter and delete topics"}
}
