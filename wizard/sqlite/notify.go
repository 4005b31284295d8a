package sqlite

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Signals tell the processes sharing a store that something changed: a
// probe job was queued, a check of a running probe was stored, a case was
// written. They only wake listeners early; the tables stay the truth, and
// a listener that missed a signal (a full buffer, a lost connection) finds
// the change when it next looks. On SQLite, where one process owns the
// file, they go from the writer to the listeners in that process; on
// PostgreSQL they go through NOTIFY on one channel, and every instance
// listening on the database hears them, its own included.
//
// A signal has a topic ("probe.queued", "case") and a payload (an id, or
// ""). Listeners of a topic get every signal of it sent after they began
// to listen, with a payload of "" as well when the connection that
// carries them was lost and made again (look again at everything).

// notifyChannel is the PostgreSQL channel that carries gatecheck's signals.
const notifyChannel = "gatecheck"

// maxPayload bounds a signal's topic and payload together: PostgreSQL
// refuses a NOTIFY payload of 8,000 bytes or more.
const maxPayload = 7900

// hub hands signals to the listeners of this process.
type hub struct {
	mu     sync.Mutex
	subs   map[string]map[chan string]struct{}
	start  func() // starts the PostgreSQL listener, once; nil on SQLite
	once   sync.Once
	cancel context.CancelFunc
	done   chan struct{}
}

func newHub() *hub { return &hub{subs: map[string]map[chan string]struct{}{}} }

// Listen returns a channel of topic's payloads and a function that stops
// listening. The channel holds 64 signals; a listener that falls further
// behind misses signals (and should look at the tables, as after "").
func (db *DB) Listen(topic string) (<-chan string, func()) {
	h := db.hub
	if h.start != nil {
		h.once.Do(h.start)
	}
	ch := make(chan string, 64)
	h.mu.Lock()
	if h.subs[topic] == nil {
		h.subs[topic] = map[chan string]struct{}{}
	}
	h.subs[topic][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[topic][ch]; ok {
			delete(h.subs[topic], ch)
			close(ch)
		}
	}
}

// Notify sends a signal to every listener of topic, in every process
// sharing the store.
func (db *DB) Notify(ctx context.Context, topic, payload string) error {
	if db.d.name != "postgres" {
		db.hub.deliver(topic, payload)
		return nil
	}
	_, err := db.write.ExecContext(ctx, `SELECT pg_notify(?, ?)`, notifyChannel, signalText(topic, payload))
	return err
}

// notify sends a signal when the transaction commits, and none when it
// does not: PostgreSQL holds a NOTIFY sent in a transaction until it
// commits; on SQLite tryTx delivers the transaction's signals after its
// commit.
func (t *txn) notify(ctx context.Context, topic, payload string) error {
	if t.d.name == "postgres" {
		_, err := t.ExecContext(ctx, `SELECT pg_notify(?, ?)`, notifyChannel, signalText(topic, payload))
		return err
	}
	t.signals = append(t.signals, [2]string{topic, payload})
	return nil
}

func signalText(topic, payload string) string {
	s := topic + " " + payload
	if len(s) > maxPayload {
		s = topic + " "
	}
	return s
}

// deliver hands a signal to topic's listeners without waiting for any.
func (h *hub) deliver(topic, payload string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[topic] {
		select {
		case ch <- payload:
		default:
		}
	}
}

// deliverAll tells every listener to look again (payload "").
func (h *hub) deliverAll() {
	h.mu.Lock()
	topics := make([]string, 0, len(h.subs))
	for t := range h.subs {
		topics = append(topics, t)
	}
	h.mu.Unlock()
	for _, t := range topics {
		h.deliver(t, "")
	}
}

// close stops the PostgreSQL listener, if it runs, and waits for it.
func (h *hub) close() {
	h.mu.Lock()
	cancel, done := h.cancel, h.done
	h.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// listenPostgres returns the start function of a PostgreSQL hub: a
// connection of its own (LISTEN holds it) that hands what it hears to
// the hub, and connects again, after a pause, when the connection is
// lost, telling every listener to look again since signals sent
// meanwhile are gone.
func listenPostgres(h *hub, cfg *pgx.ConnConfig) func() {
	return func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		ready := make(chan struct{})
		h.mu.Lock()
		h.cancel, h.done = cancel, done
		h.mu.Unlock()
		go func() {
			defer close(done)
			pause, first := 100*time.Millisecond, true
			for ctx.Err() == nil {
				err := listenOnce(ctx, cfg, func() {
					if first {
						first = false
						close(ready)
					} else {
						h.deliverAll()
					}
					pause = 100 * time.Millisecond
				}, h.deliver)
				if ctx.Err() != nil {
					break
				}
				_ = err // the next attempt says whether the database is back
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
				pause = min(2*pause, 5*time.Second)
			}
			if first {
				close(ready)
			}
		}()
		// Listen returns once LISTEN holds (or the first attempt failed),
		// so that a signal sent after Listen returns is heard.
		select {
		case <-ready:
		case <-time.After(5 * time.Second):
		}
	}
}

// listenOnce connects, listens, calls listening once LISTEN holds, and
// hands every signal heard to deliver until ctx ends or the connection
// fails.
func listenOnce(ctx context.Context, cfg *pgx.ConnConfig, listening func(), deliver func(topic, payload string)) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		topic, payload, _ := strings.Cut(n.Payload, " ")
		deliver(topic, payload)
	}
}
