package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// settingsFlags are the operator's wizard settings, each a flag with an
// environment twin (the flag wins).
type settingsFlags struct {
	tree, org, team, teamContact, support, statusPage, timeZone *string
	hostedAllowlist                                             *bool
}

func envBool(name string) bool {
	v, err := strconv.ParseBool(os.Getenv(name))
	return err == nil && v
}

func addSettingsFlags(fs *flag.FlagSet) *settingsFlags {
	env := os.Getenv
	return &settingsFlags{
		tree:            fs.String("tree", env("GATECHECK_TREE"), "troubleshooting tree `file` replacing the built-in 502 tree (GATECHECK_TREE)"),
		org:             fs.String("org", env("GATECHECK_ORG"), "organisation name shown in the wizard (GATECHECK_ORG)"),
		team:            fs.String("team", env("GATECHECK_TEAM"), "team escalations go to, e.g. CloudOps (GATECHECK_TEAM)"),
		teamContact:     fs.String("team-contact", env("GATECHECK_TEAM_CONTACT"), "how to reach that team (GATECHECK_TEAM_CONTACT)"),
		support:         fs.String("support-contact", env("GATECHECK_SUPPORT_CONTACT"), "helpdesk contact for visitors (GATECHECK_SUPPORT_CONTACT)"),
		statusPage:      fs.String("status-page", env("GATECHECK_STATUS_PAGE"), "the service's status page (GATECHECK_STATUS_PAGE)"),
		timeZone:        fs.String("time-zone", env("GATECHECK_TIME_ZONE"), "time zone of escalation summaries, e.g. Europe/London (GATECHECK_TIME_ZONE; default UTC)"),
		hostedAllowlist: fs.Bool("hosted-allowlist", envBool("GATECHECK_HOSTED_ALLOWLIST"), "the application is hosted behind an IP allowlist (GATECHECK_HOSTED_ALLOWLIST)"),
	}
}

// resolve loads the tree and builds the settings.
func (f *settingsFlags) resolve() (*wizard.Tree, wizard.Settings, error) {
	s := wizard.Settings{
		Org: *f.org, Team: *f.team, TeamContact: *f.teamContact, SupportContact: *f.support,
		StatusPage: *f.statusPage, HostedAllowlist: *f.hostedAllowlist,
	}
	if *f.timeZone != "" {
		loc, err := time.LoadLocation(*f.timeZone)
		if err != nil {
			return nil, s, fmt.Errorf("--time-zone: %q is not a time zone name", *f.timeZone)
		}
		s.Location = loc
	}
	if *f.tree == "" {
		return wizard.Default(), s, nil
	}
	t, err := wizard.Load(*f.tree)
	if err != nil {
		return nil, s, fmt.Errorf("--tree: %w", err)
	}
	return t, s, nil
}
