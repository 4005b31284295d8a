package wizard

import (
	"testing"
	"time"
)

func TestReplayAndRecordsFor(t *testing.T) {
	at := time.Unix(1, 0)
	a := func(node, choice string) Answer { return Answer{Node: node, Choice: choice, At: at} }
	var log []StepRecord
	apply := func(old, new []Answer) {
		log = append(log, RecordsFor(old, new, "", at)...)
		got := ReplayAnswers(log)
		if len(got) != len(new) {
			t.Fatalf("replay = %v, want %v (log %v)", got, new, log)
		}
		for i := range new {
			if got[i].Node != new[i].Node || got[i].Choice != new[i].Choice {
				t.Fatalf("replay = %v, want %v", got, new)
			}
		}
	}
	s1 := []Answer{a("q1", "x")}
	apply(nil, s1)
	s2 := append(s1, a("q2", "y"), a("q3", "z"))
	apply(s1, s2)
	s3 := s2[:1] // back twice
	apply(s2, s3)
	s4 := append([]Answer{a("q1", "x")}, a("q2", "other"))
	apply(s3, s4)
	s5 := []Answer{a("q1", "changed")} // revise the first answer
	apply(s4, s5)
	if n := len(log); n != 6 {
		t.Errorf("log has %d records, want 6 (append-only history)", n)
	}
}
