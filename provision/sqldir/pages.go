package sqldir

import (
	"container/list"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"
)

// SCIM pages by position (startIndex), and clients that read every user,
// as Okta's import does, walk the pages in order: startIndex 1, 101, 201,
// and so on. Found by OFFSET, page n costs the n pages before it, and the
// walk costs the square of its length; counted again on every page, each
// page also costs a read of every match. pageCache keeps, for each
// caller's walk (provision.Query.Walk: the SCIM client, with the query and
// the page size) in ID order, where each page served ended and the count
// it was served with, so that the next page of the walk is an index range
// after the last ID (keyset paging) and reuses the count.
//
// A page found from a mark starts after the last user that caller was
// shown, which is what a walk wants even when users were added or removed
// meanwhile (OFFSET would then repeat or skip one). Marks are the
// caller's own, kept in room of its own: another client reading any pages
// neither moves nor evicts them. Two walks of one query and page size by
// one client at once share their marks (a client cannot be told apart
// from itself). A count is reused only while this process has written
// nothing since it was taken, and for countReuse at most: a write made by
// another replica or by the application itself shows in totalResults
// within that time. A first page (startIndex 1) is always counted.
type pageCache struct {
	mu      sync.Mutex
	walkers map[string]*walkerMarks
	order   *list.List // of walker names, most recently used first
}

// walkerMarks are one caller's marks. Each caller has its own room, so
// that another caller's walks never push them out.
type walkerMarks struct {
	name    string
	entries map[pageKey]*list.Element
	order   *list.List // of pageMark, most recently used first
	at      *list.Element
}

// pageKey names one position of one caller's walk (queryKey).
type pageKey struct {
	query  [sha256.Size]byte
	offset int
}

// pageMark is what is known of a position.
type pageMark struct {
	key pageKey
	// id is the ID the page at this position starts after (or at, when
	// inclusive: the first ID of a page served before).
	id        string
	inclusive bool
	total     int
	gen       uint64 // the store's write generation when total was counted
	counted   time.Time
	at        time.Time
}

const (
	walkerMarksMax = 64               // positions kept per caller
	walkersMax     = 256              // callers kept (SCIM clients: one per token)
	markLife       = 10 * time.Minute // a walk pausing longer starts over
	countReuse     = 30 * time.Second
)

// queryKey names one query of a caller's walk: the page size, and the
// query's SQL, arguments and direction.
func queryKey(limit int, from, where string, args []any, descending bool) [sha256.Size]byte {
	return sha256.Sum256(fmt.Appendf(nil, "%d\x00%s\x00%s\x00%#v\x00%t", limit, from, where, args, descending))
}

func (c *pageCache) get(walker string, k pageKey, now time.Time) (pageMark, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.walkers[walker]
	if w == nil {
		return pageMark{}, false
	}
	e, ok := w.entries[k]
	if !ok {
		return pageMark{}, false
	}
	m := e.Value.(pageMark)
	if now.Sub(m.at) > markLife {
		w.order.Remove(e)
		delete(w.entries, k)
		return pageMark{}, false
	}
	w.order.MoveToFront(e)
	return m, true
}

func (c *pageCache) put(walker string, m pageMark) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.walkers == nil {
		c.walkers, c.order = map[string]*walkerMarks{}, list.New()
	}
	w := c.walkers[walker]
	if w == nil {
		w = &walkerMarks{name: walker, entries: map[pageKey]*list.Element{}, order: list.New()}
		w.at = c.order.PushFront(w)
		c.walkers[walker] = w
		for c.order.Len() > walkersMax {
			last := c.order.Back()
			c.order.Remove(last)
			delete(c.walkers, last.Value.(*walkerMarks).name)
		}
	}
	c.order.MoveToFront(w.at)
	if e, ok := w.entries[m.key]; ok {
		e.Value = m
		w.order.MoveToFront(e)
		return
	}
	w.entries[m.key] = w.order.PushFront(m)
	for w.order.Len() > walkerMarksMax {
		last := w.order.Back()
		w.order.Remove(last)
		delete(w.entries, last.Value.(pageMark).key)
	}
}
