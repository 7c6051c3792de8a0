package plugin

import (
	"context"

	"github.com/spf13/cobra"
)

// command is kubectl's command pattern (k8s.io/kubectl pkg/cmd): each
// command's XOptions, made by NewXOptions(streams) with its defaults and
// its IOStreams, is filled from the flags and arguments by Complete,
// checked by Validate without touching the cluster or a CA (pure, so
// table-tested), and carried out by Run.
type command interface {
	Complete(f *Factory, cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

var (
	_ command = (*ApplyOptions)(nil)
	_ command = (*CheckOptions)(nil)
	_ command = (*CleanupOptions)(nil)
	_ command = (*CompletionOptions)(nil)
	_ command = (*CreateIssuerOptions)(nil)
	_ command = (*DeleteCertificateOptions)(nil)
	_ command = (*DeleteIssuerOptions)(nil)
	_ command = (*ExportOptions)(nil)
	_ command = (*GetIssuersOptions)(nil)
	_ command = (*GetProfilesOptions)(nil)
	_ command = (*IssueOptions)(nil)
	_ command = (*RenewOptions)(nil)
	_ command = (*RevokeOptions)(nil)
	_ command = (*ScheduleOptions)(nil)
	_ command = (*StatusOptions)(nil)
	_ command = (*UnscheduleOptions)(nil)
	_ command = (*UpdateIssuerOptions)(nil)
	_ command = (*VersionOptions)(nil)
)

// runE is a command's RunE: Complete, Validate, Run.
func runE(f *Factory, o command) func(cmd *cobra.Command, args []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(f, cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}
