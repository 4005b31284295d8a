package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

func TestAgents(t *testing.T) { onEngines(t, testAgents) }

func testAgents(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	a, token, err := db.CreateAgent(ctx, "office-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "gca_") || len(token) < 30 {
		t.Errorf("token %q", token)
	}
	if _, _, err := db.CreateAgent(ctx, "OFFICE-1"); wizard.ErrorCode(err) != wizard.ECONFLICT {
		t.Errorf("a second agent of the same name (case aside): %v", err)
	}
	// Only the hash is kept.
	var stored string
	db.read.QueryRow(`SELECT token_hash FROM agents WHERE id = ?`, a.ID).Scan(&stored)
	if stored == token || stored != hashToken(token) {
		t.Errorf("stored %q for token %q", stored, token)
	}

	got, err := db.AgentByToken(ctx, token)
	if err != nil || got.Name != "office-1" {
		t.Fatalf("by token: %+v %v", got, err)
	}
	if _, err := db.AgentByToken(ctx, token+"x"); wizard.ErrorCode(err) != wizard.EUNAUTHORIZED {
		t.Errorf("a forged token: %v", err)
	}
	if got.Online(time.Now()) {
		t.Error("an agent never seen is online")
	}
	if err := db.AgentSeen(ctx, a.ID, "198.51.100.7", "gatecheck-agent/1"); err != nil {
		t.Fatal(err)
	}
	agents, err := db.Agents(ctx)
	if err != nil || len(agents) != 1 {
		t.Fatalf("agents: %v %v", agents, err)
	}
	if s := agents[0]; s.LastAddr != "198.51.100.7" || s.Version != "gatecheck-agent/1" || !s.Online(time.Now()) ||
		s.Online(time.Now().Add(wizard.AgentOfflineAfter)) {
		t.Errorf("after being seen: %+v", s)
	}

	if err := db.RevokeAgent(ctx, "office-1"); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeAgent(ctx, "office-1"); wizard.ErrorCode(err) != wizard.ECONFLICT {
		t.Errorf("revoking twice: %v", err)
	}
	if err := db.RevokeAgent(ctx, "nobody"); wizard.ErrorCode(err) != wizard.ENOTFOUND {
		t.Errorf("revoking no agent: %v", err)
	}
	if _, err := db.AgentByToken(ctx, token); wizard.ErrorCode(err) != wizard.EUNAUTHORIZED {
		t.Errorf("a revoked token: %v", err)
	}
	agents, _ = db.Agents(ctx)
	if agents[0].RevokedAt.IsZero() || agents[0].Online(time.Now()) {
		t.Errorf("a revoked agent: %+v", agents[0])
	}
}
