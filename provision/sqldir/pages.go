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
// caller's own: another client reading the same pages never moves them. A count is reused
// only while this process has written nothing since it was taken, and for
// countReuse at most: a write made by another replica or by the
// application itself shows in totalResults within that time. A first
// page (startIndex 1) is always counted.
type pageCache struct {
	mu      sync.Mutex
	entries map[pageKey]*list.Element
	order   *list.List // most recently used first
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
	pageMarks  = 512              // positions kept
	markLife   = 10 * time.Minute // a walk pausing longer starts over
	countReuse = 30 * time.Second
)

// queryKey names one caller's walk: the caller, the page size, and the
// query's SQL, arguments and direction.
func queryKey(walker string, limit int, from, where string, args []any, descending bool) [sha256.Size]byte {
	return sha256.Sum256(fmt.Appendf(nil, "%q\x00%d\x00%s\x00%s\x00%#v\x00%t", walker, limit, from, where, args, descending))
}

func (c *pageCache) get(k pageKey, now time.Time) (pageMark, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok {
		return pageMark{}, false
	}
	m := e.Value.(pageMark)
	if now.Sub(m.at) > markLife {
		c.order.Remove(e)
		delete(c.entries, k)
		return pageMark{}, false
	}
	c.order.MoveToFront(e)
	return m, true
}

func (c *pageCache) put(m pageMark) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries, c.order = map[pageKey]*list.Element{}, list.New()
	}
	if e, ok := c.entries[m.key]; ok {
		e.Value = m
		c.order.MoveToFront(e)
		return
	}
	c.entries[m.key] = c.order.PushFront(m)
	for c.order.Len() > pageMarks {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.entries, last.Value.(pageMark).key)
	}
}
