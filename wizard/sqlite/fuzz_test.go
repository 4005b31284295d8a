package sqlite

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gatecheck/gatecheck/wizard"
)

var ftsShape = regexp.MustCompile(`^("[^"]+" )*"[^"]+\*"$`)

// FuzzFindCasesQuery: whatever a person types into the search (FTS syntax,
// quotes, NEAR, stars, minus signs, parentheses, bad UTF-8), FindCases
// answers without an error, and it finds a case by its ticket and by its
// note typed in whole.
func FuzzFindCasesQuery(f *testing.F) {
	for _, s := range []string{"INC-42", "whitelist leeds", `"unterminated`, `NEAR(a b)`, "a NEAR/2 b", "a*", "*", "-a", "a -b", "(a OR b)",
		"a AND NOT b", "^a", "ticket:INC", "url:http", `a"b`, "\xff\xfe", "a\x00b", "—", "a — b", "« x »", "ÄÖÜ-9", "é", "e\u0301",
		"日本語のチケット", "'; DROP TABLE cases; --", "%00", "%zz", "a_b", "__", "--", "1e3", strings.Repeat("a ", 300), strings.Repeat("a ", 5000), strings.Repeat("x", 5000)} {
		f.Add(s, s, s)
	}
	f.Add("INC-1", "Rang the customer back", "customer")
	db := MustOpenDB(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, ticket, note, query string) {
		if q := ftsQuery(query); q != "" && !ftsShape.MatchString(q) {
			t.Fatalf("ftsQuery(%q) = %q", query, q)
		}
		if _, _, err := db.FindCases(ctx, wizard.CaseFilter{Query: query, Limit: 1}); err != nil {
			t.Fatalf("searching %.300q: %v", query, err)
		}
		c := newCase(t, db, "https://shop.example.com/", ticket)
		if _, err := db.AddNote(ctx, c.ID, "ann", note); err != nil && wizard.ErrorCode(err) != wizard.EINVALID {
			t.Fatal(err)
		}
		for _, typed := range []string{ticket, strings.TrimSpace(note)} {
			// The tokenizer reads text up to a NUL, and invalid UTF-8 its
			// own way (the web layer keeps both out of searches).
			if ftsQuery(typed) == "" || len(typed) > 10000 || strings.ContainsRune(typed, 0) || !utf8.ValidString(typed) {
				continue
			}
			got, _, err := db.FindCases(ctx, wizard.CaseFilter{Query: typed, Limit: 1})
			if err != nil {
				t.Fatalf("searching %q: %v", typed, err)
			}
			if len(got) != 1 || got[0].ID != c.ID {
				t.Fatalf("searching %.300q (%.300s) does not find the case it is in", typed, ftsQuery(typed))
			}
		}
	})
}
