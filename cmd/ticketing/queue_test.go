package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ticketing/ticketing/edge"
	"github.com/ticketing/ticketing/internal/cloudevents"
	"github.com/ticketing/ticketing/internal/eventually"
	"github.com/ticketing/ticketing/internal/jsnames"
	"github.com/ticketing/ticketing/services/catalog"
	"github.com/ticketing/ticketing/services/queue"
	queueapi "github.com/ticketing/ticketing/services/queue/natsapi"
)

// queueStatus is the waiting room's status object.
type queueStatus struct {
	Ticket        string `json:"ticket"`
	State         string `json:"state"`
	Position      int    `json:"position"`
	LikelySoldOut bool   `json:"likely_sold_out"`
	Token         string `json:"token"`
}

// shopper is one user of the waiting room: a session at one edge.
type shopper struct {
	a       *api
	session string
	ticket  queue.TicketID
}

func newSession() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *shopper) cookie() map[string]string {
	return map[string]string{"Cookie": "tq_session=" + s.session}
}

func (s *shopper) status(event string) (queueStatus, error) {
	var st queueStatus
	code, err := s.a.do("GET", "/v1/events/"+event+"/queue/status", s.cookie(), nil, &st)
	if err == nil && code != 200 {
		err = fmt.Errorf("status: HTTP %d", code)
	}
	return st, err
}

// TestQueueAcrossTwoEdges runs the waiting room of one event across two
// edges (leaf nodes of one core process):
//
//   - before the sale both edges' users are in the pre-queue and the draw's
//     commitment is published;
//   - at the sale the core reveals the seed; the first admissions follow
//     the edges' line lengths (60 and 20 waiting: 24 and 8 of the 32 that
//     50 seats allow), and each edge lets through the front of its own
//     line in the published draw order, which verifies against the
//     commitment and lists both edges' pre-queues;
//   - admitted users hold every seat with their tokens: the sell-out
//     reaches every waiting user at both edges; a released hold brings
//     seats back and the lines resume with their places kept;
//   - joins and admissions reach the EVENTS stream for the funnel.
func TestQueueAcrossTwoEdges(t *testing.T) {
	cores := newCores(t, 1, "--queue-tick", "250ms")
	cores[0].start()
	cores[0].waitReady(60 * time.Second)
	edges := []*edge.Edge{
		startNamedEdge(t, cores, "edge-east", edge.RateLimitConfig{Disabled: true}),
		startNamedEdge(t, cores, "edge-west", edge.RateLimitConfig{Disabled: true}),
	}
	// Every shopper buys as the demo buyer (an account may shop in several
	// places in line; the admission token is the place's).
	apis := []*api{newAPI(t, edges[0]).signIn(testBuyer), newAPI(t, edges[1]).signIn(testBuyer)}
	const event = "two-edges"
	onSale := apis[0].createWaitingRoomEvent(event, 10*time.Second, 1, 30) // 20 seats + 30 GA: 50
	// The second edge learns of the event from its catalog mirror.
	eventually.Nil(t, 30*time.Second, func() error {
		_, err := apis[1].availability(event)
		return err
	})

	var before queueapi.DrawRecord
	if code, err := apis[1].do("GET", "/v1/events/"+event+"/queue/draw", nil, nil, &before); err != nil || code != 200 {
		t.Fatalf("draw record before the sale: %d %v", code, err)
	}
	if len(before.Seed) != 0 || len(before.Commitment) != 64 {
		t.Fatalf("before the sale: seed %x, commitment %q", before.Seed, before.Commitment)
	}

	lines := [][]*shopper{make([]*shopper, 60), make([]*shopper, 20)}
	for e, line := range lines {
		for i := range line {
			s := &shopper{a: apis[e], session: newSession()}
			var st queueStatus
			code, err := s.a.do("POST", "/v1/events/"+event+"/queue/join", s.cookie(), nil, &st)
			if err != nil || code != 201 || st.State != "pre_queue" {
				t.Fatalf("join at edge %d: %d %v %+v", e, code, err, st)
			}
			if s.ticket, err = queue.ParseTicketID(st.Ticket); err != nil {
				t.Fatal(err)
			}
			line[i] = s
		}
	}
	if time.Now().After(onSale) {
		t.Fatal("the joins took past the on-sale time; the test cannot check the pre-queue")
	}

	// The first admissions: 32 (seats for 50 at 2 a shopper, overbooked
	// 1.25), split 24/8 by the line lengths; none after, while they shop.
	admitted := func(line []*shopper) (in map[queue.TicketID]bool, waiting int, err error) {
		in = map[queue.TicketID]bool{}
		for _, s := range line {
			st, err := s.status(event)
			if err != nil {
				return nil, 0, err
			}
			switch st.State {
			case "admitted":
				in[s.ticket] = true
			case "queued":
				waiting++
			default:
				return nil, 0, fmt.Errorf("state %q", st.State)
			}
		}
		return in, waiting, nil
	}
	var got [2]map[queue.TicketID]bool
	eventually.Nil(t, 60*time.Second, func() error {
		for e := range lines {
			in, _, err := admitted(lines[e])
			if err != nil {
				return err
			}
			got[e] = in
		}
		if n := len(got[0]) + len(got[1]); n != 32 {
			return fmt.Errorf("%d admitted, want 32", n)
		}
		return nil
	})
	if len(got[0]) != 24 || len(got[1]) != 8 {
		t.Fatalf("admitted %d at the edge with 60 waiting and %d at the one with 20; want 24 and 8", len(got[0]), len(got[1]))
	}

	// The draw record: complete, verifies against the commitment published
	// before the sale, lists both pre-queues; each edge admitted the front
	// of its own line in that order.
	var rec queueapi.DrawRecord
	eventually.Nil(t, 60*time.Second, func() error {
		rec = queueapi.DrawRecord{}
		if code, err := apis[0].do("GET", "/v1/events/"+event+"/queue/draw", nil, nil, &rec); err != nil || code != 200 {
			return fmt.Errorf("draw: %d %v", code, err)
		}
		if !rec.Complete {
			return fmt.Errorf("draw record not complete yet")
		}
		return nil
	})
	if rec.Commitment != before.Commitment {
		t.Fatalf("commitment changed: %s, before the sale %s", rec.Commitment, before.Commitment)
	}
	if err := rec.Verify(); err != nil {
		t.Fatal(err)
	}
	if rec.Total != 80 {
		t.Fatalf("draw lists %d tickets, want the 80 of both pre-queues", rec.Total)
	}
	place := map[queue.TicketID]int{}
	for i, tk := range rec.Tickets {
		place[tk] = i
	}
	for e, line := range lines {
		order := make([]queue.TicketID, len(line))
		for i, s := range line {
			if _, ok := place[s.ticket]; !ok {
				t.Fatalf("ticket %s of edge %d is not in the draw", s.ticket, e)
			}
			order[i] = s.ticket
		}
		sort.Slice(order, func(i, j int) bool { return place[order[i]] < place[order[j]] })
		for i, tk := range order {
			if front := i < len(got[e]); got[e][tk] != front {
				t.Fatalf("edge %d: ticket at draw place %d of its line admitted=%v; the edge must admit the front of its line", e, i+1, got[e][tk])
			}
		}
	}

	// eachWaiting calls f with the status of every user not admitted.
	eachWaiting := func(f func(e int, s *shopper, st queueStatus) error) error {
		for e, line := range lines {
			for _, s := range line {
				if got[e][s.ticket] {
					continue
				}
				st, err := s.status(event)
				if err != nil {
					return err
				}
				if err := f(e, s, st); err != nil {
					return err
				}
			}
		}
		return nil
	}
	places := map[*shopper]int{}
	if err := eachWaiting(func(e int, s *shopper, st queueStatus) error {
		if st.State != "queued" || st.Position < 1 {
			return fmt.Errorf("edge %d: a waiting user reads %q at place %d", e, st.State, st.Position)
		}
		places[s] = st.Position
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Admitted shoppers hold all 50 seats with their tokens.
	var shoppers []*shopper
	for e, line := range lines {
		for _, s := range line {
			if got[e][s.ticket] {
				shoppers = append(shoppers, s)
			}
		}
	}
	bodies := []map[string]any{{"zone": "ga", "quantity": 10}, {"zone": "ga", "quantity": 10}, {"zone": "ga", "quantity": 10}}
	for _, from := range []int{1, 11} {
		var seats []string
		for n := from; n < from+10; n++ {
			seats = append(seats, fmt.Sprintf("s0-r0-%d", n))
		}
		bodies = append(bodies, map[string]any{"seats": seats})
	}
	var holds []holdAnswer
	for i, body := range bodies {
		s := shoppers[i]
		st, err := s.status(event)
		if err != nil || st.Token == "" {
			t.Fatalf("admitted shopper's status has no token: %+v %v", st, err)
		}
		h := s.cookie()
		h["Idempotency-Key"] = fmt.Sprintf("sellout-%d", i)
		h["Admission-Token"] = st.Token
		var ans holdAnswer
		if code, err := s.a.do("POST", "/v1/events/"+event+"/holds", h, body, &ans); err != nil || code != 201 {
			t.Fatalf("hold %d with a token: %d %v %+v", i, code, err, ans.Error)
		}
		holds = append(holds, ans)
	}

	// Sold out: every waiting user, at both edges, is told.
	eventually.Nil(t, 30*time.Second, func() error {
		return eachWaiting(func(e int, s *shopper, st queueStatus) error {
			if st.State != "sold_out" {
				return fmt.Errorf("edge %d: a waiting user reads %q, want sold_out", e, st.State)
			}
			return nil
		})
	})
	// A released hold brings seats back: the lines resume, places kept.
	if code, err := shoppers[0].a.do("DELETE", "/v1/holds/"+holds[0].HoldID, nil, nil, nil); err != nil || code != 200 {
		t.Fatalf("release: %d %v", code, err)
	}
	eventually.Nil(t, 30*time.Second, func() error {
		return eachWaiting(func(e int, s *shopper, st queueStatus) error {
			if st.State != "queued" || st.Position != places[s] {
				return fmt.Errorf("edge %d: a waiting user reads %q at place %d after the release, want queued at %d", e, st.State, st.Position, places[s])
			}
			return nil
		})
	})

	// The funnel's events: 80 joins and 32 admissions in EVENTS.
	nc := cores[0].conn()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	eventually.Nil(t, 30*time.Second, func() error {
		types, err := queueEvents(ctx, js, event)
		if err != nil {
			return err
		}
		if types["ticketing.queue.joined"] != 80 || types["ticketing.queue.admitted"] != 32 {
			return fmt.Errorf("queue events %v, want 80 joined and 32 admitted", types)
		}
		return nil
	})
}

// createWaitingRoomEvent creates, as the admin, a venue with rows of 20
// reserved seats (zone "std", section "s0", rows "r0", "r1", …) and a GA
// zone "ga" of gaCap, and an event at it with its waiting room on, on sale
// in onSaleIn from the creation (the admin signed in first, which takes a
// while); it returns the on-sale time once the edge serves the event's
// waiting room.
func (a *api) createWaitingRoomEvent(id string, onSaleIn time.Duration, rows, gaCap int) time.Time {
	a.t.Helper()
	v := catalog.Venue{ID: id + "-venue", Name: "Venue " + id, City: "Testville",
		Zones: []catalog.Zone{{ID: "std", Name: "Standard", Kind: catalog.Reserved, PriceCents: 5000, Currency: "USD"},
			{ID: "ga", Name: "Floor", Kind: catalog.GA, Capacity: gaCap, PriceCents: 3000, Currency: "USD"}},
		Sections: []catalog.Section{{ID: "s0", Name: "Section 0"}}}
	for r := 0; r < rows; r++ {
		v.Sections[0].Rows = append(v.Sections[0].Rows, catalog.Row{ID: fmt.Sprintf("r%d", r), Seats: 20, Zone: "std"})
	}
	admin := a.asAdmin()
	onSale := time.Now().Add(onSaleIn)
	if code, err := admin.do("POST", "/v1/admin/venues", nil, v, nil); err != nil || code != 201 {
		a.t.Fatalf("create venue: %d %v", code, err)
	}
	ev := map[string]any{"id": id, "name": "Event " + id, "venue_id": v.ID, "queue": true,
		"on_sale_at": onSale.UTC().Format(time.RFC3339Nano), "starts_at": time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)}
	if code, err := admin.do("POST", "/v1/admin/events", nil, ev, nil); err != nil || code != 201 {
		a.t.Fatalf("create event: %d %v", code, err)
	}
	eventually.Nil(a.t, 30*time.Second, func() error {
		if _, err := a.availability(id); err != nil {
			return err
		}
		code, err := a.do("GET", "/queue/"+id, nil, nil, nil)
		if err == nil && code != 200 {
			err = fmt.Errorf("GET /queue/%s: HTTP %d", id, code)
		}
		return err
	})
	return onSale
}

// queueEvents counts the waiting room's domain events of event in EVENTS
// by type.
func queueEvents(ctx context.Context, js jetstream.JetStream, event string) (map[string]int, error) {
	s, err := js.Stream(ctx, jsnames.Events)
	if err != nil {
		return nil, err
	}
	subj := jsnames.EventsSubjPx + "queue." + event
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return nil, err
	}
	n := int(info.State.Subjects[subj])
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return nil, err
	}
	types := map[string]int{}
	for range n {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return nil, err
		}
		ev, err := cloudevents.Unmarshal(m.Data())
		if err != nil {
			return nil, err
		}
		var d struct {
			EventID string `json:"event_id"`
		}
		if err := json.Unmarshal(ev.Data, &d); err != nil || d.EventID != event || !strings.HasPrefix(ev.Type, "ticketing.queue.") {
			return nil, fmt.Errorf("queue event %s %s: %v", ev.Type, ev.Data, err)
		}
		types[ev.Type]++
	}
	return types, nil
}

// TestQueueControllerFailover runs the waiting room on three core nodes (a
// JetStream cluster) and kills the node that runs the admission controller
// (SIGKILL) mid-sale: another node takes the controller's lease and goes on
// admitting from the state in the cluster; the users admitted before stay
// admitted; a token issued after the kill (keys shared in the cluster)
// admits a hold; the draw record is complete and verifies.
func TestQueueControllerFailover(t *testing.T) {
	cores := newCores(t, 3, "--queue-tick", "250ms", "--queue-target-shoppers", "4", "--queue-shopper-window", "3s")
	for _, c := range cores {
		c.start()
	}
	for _, c := range cores {
		c.waitReady(90 * time.Second)
	}
	e := startNamedEdge(t, cores, "edge-f", edge.RateLimitConfig{Disabled: true})
	a := newAPI(t, e).signIn(testBuyer)
	const event = "failover-sale"
	a.createWaitingRoomEvent(event, 8*time.Second, 2, 100)
	line := make([]*shopper, 30)
	for i := range line {
		s := &shopper{a: a, session: newSession()}
		// A cluster that has just formed may answer 503 (Retry-After)
		// while the queue's services settle; a client tries again.
		eventually.Nil(t, 30*time.Second, func() error {
			var st queueStatus
			code, err := a.do("POST", "/v1/events/"+event+"/queue/join", s.cookie(), nil, &st)
			if err == nil && code == 503 {
				return fmt.Errorf("join: HTTP 503")
			}
			if err != nil || code != 201 {
				t.Fatalf("join: %d %v", code, err)
			}
			return nil
		})
		line[i] = s
	}
	admitted := func() (map[*shopper]bool, error) {
		in := map[*shopper]bool{}
		for _, s := range line {
			st, err := s.status(event)
			if err != nil {
				return nil, err
			}
			if st.State == "admitted" {
				in[s] = true
			}
		}
		return in, nil
	}
	var before map[*shopper]bool
	eventually.Nil(t, 60*time.Second, func() error {
		var err error
		if before, err = admitted(); err == nil && len(before) == 0 {
			err = fmt.Errorf("nobody admitted yet")
		}
		return err
	})

	holder := leaseHolder(t, cores[0], "queue.controller")
	var survivor *coreProc
	for _, c := range cores {
		if c.name == holder {
			c.kill9()
		} else {
			survivor = c
		}
	}
	t.Logf("killed %s, the controller's node, with %d admitted", holder, len(before))

	// Admissions go on under the new controller (4 shoppers every 3 s).
	var after map[*shopper]bool
	eventually.Nil(t, 90*time.Second, func() error {
		var err error
		if after, err = admitted(); err != nil {
			return err
		}
		if len(after) < len(before)+8 {
			return fmt.Errorf("%d admitted, %d before the kill", len(after), len(before))
		}
		return nil
	})
	for s := range before {
		if !after[s] {
			t.Fatal("a user admitted before the kill is no longer admitted")
		}
	}
	if h := leaseHolder(t, survivor, "queue.controller"); h == holder {
		t.Fatalf("the controller's lease is still held by the killed %s", h)
	}
	// A token issued after the kill admits a hold.
	var s *shopper
	for x := range after {
		if !before[x] {
			s = x
			break
		}
	}
	var st queueStatus
	eventually.Nil(t, 30*time.Second, func() error {
		var err error
		if st, err = s.status(event); err == nil && st.Token == "" {
			err = fmt.Errorf("no token yet: %+v", st)
		}
		return err
	})
	h := s.cookie()
	h["Idempotency-Key"] = "after-failover"
	h["Admission-Token"] = st.Token
	var ans holdAnswer
	if code, err := a.do("POST", "/v1/events/"+event+"/holds", h, map[string]any{"zone": "ga", "quantity": 2}, &ans); err != nil || code != 201 {
		t.Fatalf("hold with a token issued after the failover: %d %v %+v", code, err, ans.Error)
	}
	var rec queueapi.DrawRecord
	eventually.Nil(t, 60*time.Second, func() error {
		rec = queueapi.DrawRecord{}
		if code, err := a.do("GET", "/v1/events/"+event+"/queue/draw", nil, nil, &rec); err != nil || code != 200 {
			return fmt.Errorf("draw: %d %v", code, err)
		}
		if !rec.Complete {
			return fmt.Errorf("draw record not complete yet")
		}
		return nil
	})
	if err := rec.Verify(); err != nil || rec.Total != len(line) {
		t.Fatalf("draw record of %d tickets (want %d): %v", rec.Total, len(line), err)
	}
}

// TestDevQueueSurvivesKill9 kills `ticketing dev` (SIGKILL) with a line in
// the demo's waiting room and starts it again on the same data directory:
// the edge rebuilds its line from its journal, so every user reads the
// same state and place as before, and the controller (its state in the
// core) admits no one twice.
func TestDevQueueSurvivesKill9(t *testing.T) {
	d := &devProc{t: t, dir: t.TempDir(), http: freeAddr(t), nats: freeAddr(t), leaf: freeAddr(t), adminTok: testAdminToken,
		extra: []string{"--onsale-in", "0", "--queue-target-shoppers", "3", "--queue-tick", "200ms"}}
	d.start()
	a := d.api(10 * time.Second)
	const event = "arena-onsale" // on sale since the demo's date: first come, first served
	line := make([]*shopper, 15) // under the join guard's per-address threshold for suspects
	for i := range line {
		s := &shopper{a: a, session: newSession()}
		if code, err := a.do("POST", "/v1/events/"+event+"/queue/join", s.cookie(), nil, nil); err != nil || code != 201 {
			t.Fatalf("join %d: %d %v", i, code, err)
		}
		line[i] = s
	}
	statuses := func() (map[*shopper]queueStatus, int, error) {
		out := map[*shopper]queueStatus{}
		admitted := 0
		for _, s := range line {
			st, err := s.status(event)
			if err != nil {
				return nil, 0, err
			}
			st.Token = "" // a token is fetched per status; the state and place are what must hold
			out[s] = st
			if st.State == "admitted" {
				admitted++
			}
		}
		return out, admitted, nil
	}
	var before map[*shopper]queueStatus
	eventually.Nil(t, 60*time.Second, func() error {
		var n int
		var err error
		if before, n, err = statuses(); err == nil && n != 3 {
			err = fmt.Errorf("%d admitted, want the 3 target shoppers", n)
		}
		return err
	})
	// The journal is written every 50 ms (a process crash may lose that
	// much, as the package documents): wait until it holds the 15 joins
	// and the 3 admissions before the kill.
	journal := filepath.Join(d.dir, "edge-queue", event+".journal")
	eventually.Nil(t, 10*time.Second, func() error {
		joins, admitted, err := journalCounts(journal)
		if err == nil && (joins != len(line) || admitted != 3) {
			err = fmt.Errorf("journal holds %d joins and %d admissions", joins, admitted)
		}
		return err
	})
	d.kill9()
	d.start()
	var after map[*shopper]queueStatus
	eventually.Nil(t, 60*time.Second, func() error {
		var err error
		after, _, err = statuses()
		return err
	})
	for i, s := range line {
		if b, a := before[s], after[s]; b.State != a.State || b.Position != a.Position || b.Ticket != a.Ticket {
			t.Fatalf("user %d: %+v before the kill, %+v after", i, b, a)
		}
	}
}

// journalCounts reads an edge's queue journal (edge/queue's format:
// fixed-size records of a type byte, a payload and a CRC) and counts its
// joins and admitted users.
func journalCounts(path string) (joins, admitted int, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	size := map[byte]int{'H': 16, 'J': 25, 'D': 32, 'A': 12}
	for len(b) > 0 {
		n, ok := size[b[0]]
		if !ok || len(b) < 1+n+4 {
			break // a torn tail
		}
		switch b[0] {
		case 'J':
			joins++
		case 'A':
			admitted += int(binary.BigEndian.Uint32(b[1:5]))
		}
		b = b[1+n+4:]
	}
	return joins, admitted, nil
}
