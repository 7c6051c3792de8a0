package plugin

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// addTimeoutFlag adds --timeout with its default in *p.
func addTimeoutFlag(fl *pflag.FlagSet, p *time.Duration, usage string) {
	fl.DurationVar(p, "timeout", *p, usage)
}

// positive checks a duration flag that must be above zero (every
// --timeout, --self-check-timeout).
func positive(flag string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s must be positive", flag)
	}
	return nil
}

// notNegative checks a duration flag where 0 means "none" or "at once".
func notNegative(flag string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("%s must not be negative", flag)
	}
	return nil
}
