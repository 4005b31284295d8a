package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/gatecheck/gatecheck/wizard"
)

// benchCases is how many cases BenchmarkStore seeds on each engine.
const benchCases = 5000

// BenchmarkStore measures the store's hot paths on both engines, on
// benchCases cases (one host in ten shared, a note on one case in ten):
// storing a case, the staff list's first page, a search for a word most
// cases have, for a rare one, and for a ticket by its prefix.
func BenchmarkStore(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			db := MustOpenDB(b)
			for i := range benchCases {
				c := &wizard.Case{URL: fmt.Sprintf("https://shop%d.example-corp.com/cart", i%(benchCases/10)), Host: fmt.Sprintf("shop%d.example-corp.com", i%(benchCases/10)),
					Ticket: fmt.Sprintf("INC-%d", 100000+i), TreeVersion: "v1"}
				if err := db.CreateCase(ctx, c, nil); err != nil {
					b.Fatal(err)
				}
				if i%10 == 0 {
					if _, err := db.AddNote(ctx, c.ID, "ann", fmt.Sprintf("customer %d called twice about the checkout", i)); err != nil {
						b.Fatal(err)
					}
				}
			}
			if engine == "postgres" {
				// As autovacuum does in a live database: the planner needs
				// the statistics to choose the date index for a common word.
				if _, err := db.write.Exec(`ANALYZE`); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("create", func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					c := &wizard.Case{URL: "https://new.example.com/", Host: "new.example.com", TreeVersion: "v1"}
					if err := db.CreateCase(ctx, c, nil); err != nil {
						b.Fatal(err)
					}
					if err := db.AppendSteps(ctx, c.ID, []wizard.StepRecord{{Node: "q1", Choice: "a", At: time.Now()}}); err != nil {
						b.Fatal(err)
					}
				}
			})
			for _, q := range []struct{ name, query string }{
				{"list", ""},
				{"common_word", "example"},
				{"rare_word", "checkout customer 4210"},
				{"ticket_prefix", "INC-1042"},
			} {
				b.Run(q.name, func(b *testing.B) {
					for b.Loop() {
						if _, _, err := db.FindCases(ctx, wizard.CaseFilter{Query: q.query, Limit: 50, CountUpTo: 1000}); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
