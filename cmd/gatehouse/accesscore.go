package main

import (
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gatehouse/proxy"
)

// jsonEncoderConfig is the encoding of log.format json: zap's production
// keys, ISO 8601 times, durations in seconds. accessCore writes the same
// bytes by hand; TestAccessCoreMatchesZap holds the two together.
func jsonEncoderConfig() zapcore.EncoderConfig {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	return ec
}

// accessCore writes the access log in the JSON format. An access line is
// the largest piece of gatehouse's own work per proxied request, so the
// lines it carries (string, integer, duration and boolean fields, no
// caller, no stack, no fields added with With) are encoded here directly:
// no encoder clone, no interface call per field, the time's text reused
// within a second, no allocation. The bytes are exactly those of the
// generic core (safeCore over zap's JSON encoder with jsonEncoderConfig):
// the message and every string field pass proxy.LogSafe first. Any other
// entry goes to that generic core, so what a line says never depends on
// which path wrote it.
type accessCore struct {
	zapcore.LevelEnabler
	out      zapcore.WriteSyncer
	fallback zapcore.Core
}

// newAccessCore returns the access log's core writing to out at level.
func newAccessCore(out zapcore.WriteSyncer, level zapcore.LevelEnabler) *accessCore {
	return &accessCore{
		LevelEnabler: level,
		out:          out,
		fallback:     safeCore{zapcore.NewCore(zapcore.NewJSONEncoder(jsonEncoderConfig()), out, level)},
	}
}

// With hands a logger with fields of its own to the generic core: the
// fast path encodes only the fields of the entry itself.
func (c *accessCore) With(fields []zapcore.Field) zapcore.Core {
	if len(fields) == 0 {
		return c
	}
	return c.fallback.With(fields)
}

// Check adds c itself (a pointer, so the checked entry's list of cores
// takes it without an allocation).
func (c *accessCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *accessCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if !accessFast(e, fields) {
		return c.fallback.Write(e, fields)
	}
	l := accessLines.Get().(*accessLine)
	l.encode(e, fields)
	_, err := c.out.Write(l.buf)
	l.release()
	if err != nil {
		return err
	}
	if e.Level > zapcore.ErrorLevel {
		// As zap's core does: the process may be about to end.
		_ = c.out.Sync()
	}
	return nil
}

func (c *accessCore) Sync() error { return c.out.Sync() }

// accessFast reports whether accessLine encodes e and fields: no caller,
// no stack, and only field types an access line carries.
func accessFast(e zapcore.Entry, fields []zapcore.Field) bool {
	if e.Caller.Defined || e.Stack != "" {
		return false
	}
	for i := range fields {
		switch fields[i].Type {
		case zapcore.StringType, zapcore.Int64Type, zapcore.DurationType, zapcore.BoolType:
		default:
			return false
		}
	}
	return true
}

// accessLine is the buffer one line is encoded in, lent by accessLines.
// It keeps the text of the last entry time it wrote up to the second and
// its zone, keyed by the Unix second and the zone offset (together they
// fix that text): within a second only the milliseconds are new. Each
// line is used by one writer at a time, so the cache needs no lock.
type accessLine struct {
	buf []byte

	cached  bool
	sec     int64 // Unix second of the cached text
	off     int   // zone offset, in seconds east of UTC
	seconds []byte
	zone    []byte
}

var accessLines = sync.Pool{New: func() any { return &accessLine{buf: make([]byte, 0, 1024)} }}

// maxAccessBuffer bounds the buffer a line keeps when returned to the
// pool: one very long line should not hold its memory for good.
const maxAccessBuffer = 64 << 10

func (l *accessLine) release() {
	if cap(l.buf) > maxAccessBuffer {
		l.buf = make([]byte, 0, 1024)
	}
	accessLines.Put(l)
}

// encode writes e and fields to l.buf as zap's JSON encoder does with
// jsonEncoderConfig, after safeCore's LogSafe of the message and of
// every string field.
func (l *accessLine) encode(e zapcore.Entry, fields []zapcore.Field) {
	b := append(l.buf[:0], `{"level":`...)
	b = appendJSONString(b, e.Level.String())
	if !e.Time.IsZero() {
		b = append(b, `,"ts":"`...)
		b = l.appendTime(b, e.Time)
		b = append(b, '"')
	}
	if e.LoggerName != "" {
		b = append(b, `,"logger":`...)
		b = appendJSONString(b, e.LoggerName)
	}
	b = append(b, `,"msg":`...)
	b = appendJSONString(b, proxy.LogSafe(e.Message, maxLogField))
	for i := range fields {
		f := &fields[i]
		b = append(b, ',')
		b = appendJSONString(b, f.Key)
		b = append(b, ':')
		switch f.Type {
		case zapcore.StringType:
			b = appendJSONString(b, proxy.LogSafe(f.String, maxLogField))
		case zapcore.Int64Type:
			b = strconv.AppendInt(b, f.Integer, 10)
		case zapcore.DurationType:
			b = appendSeconds(b, time.Duration(f.Integer))
		case zapcore.BoolType:
			b = strconv.AppendBool(b, f.Integer == 1)
		}
	}
	l.buf = append(b, "}\n"...)
}

// appendTime appends t as zapcore.ISO8601TimeEncoder writes it
// (2006-01-02T15:04:05.000Z0700, in t's location). Go formats each part
// of a layout on its own, so the text is the cached seconds, the
// milliseconds (truncated, as Format does) and the cached zone.
func (l *accessLine) appendTime(b []byte, t time.Time) []byte {
	sec := t.Unix()
	_, off := t.Zone()
	if !l.cached || sec != l.sec || off != l.off {
		l.seconds = t.AppendFormat(l.seconds[:0], "2006-01-02T15:04:05")
		l.zone = t.AppendFormat(l.zone[:0], "Z0700")
		l.sec, l.off, l.cached = sec, off, true
	}
	ms := t.Nanosecond() / int(time.Millisecond)
	b = append(b, l.seconds...)
	b = append(b, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(b, l.zone...)
}

// appendSeconds appends d in seconds as zapcore.SecondsDurationEncoder
// has zap write it: the float64 float64(d)/1e9 in its shortest form.
// Within 10^15 ns (11 days) that form is d's own decimal, written here
// from the integer without strconv's search for the shortest digits:
// float64(d) is exact and the division is correctly rounded, so the
// quotient is the float nearest that decimal, and a decimal of at most 15
// significant digits is the only one of its length or shorter that
// rounds to its float.
func appendSeconds(b []byte, d time.Duration) []byte {
	const exact = 1e15
	if d <= -exact || d >= exact {
		return appendJSONFloat(b, float64(d)/float64(time.Second))
	}
	if d < 0 {
		b = append(b, '-')
		d = -d
	}
	b = strconv.AppendInt(b, int64(d/time.Second), 10)
	frac := int64(d % time.Second)
	if frac == 0 {
		return b
	}
	var text [10]byte // the point and nine digits
	text[0] = '.'
	for i := 9; i > 0; i-- {
		text[i] = byte('0' + frac%10)
		frac /= 10
	}
	n := len(text)
	for text[n-1] == '0' {
		n--
	}
	return append(b, text[:n]...)
}

// appendJSONFloat appends f as zap's JSON encoder does: NaN and the
// infinities as quoted strings, any other value in the shortest 'f' form.
func appendJSONFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Inf"`...)
	}
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

// jsonPlain marks the ASCII bytes zap copies into a JSON string as they
// are: every one from space up, DEL included, but the quote and the
// backslash.
var jsonPlain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const lowerHex = "0123456789abcdef"

// appendJSONString appends s quoted as zap's JSON encoder writes it: the
// quote and the backslash escaped, \n \r \t, other bytes below 0x20 as
// \u00XX, each byte that is not part of valid UTF-8 as \ufffd, and every
// other rune (DEL, U+2028 and U+2029 among them) as it is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	last := 0
	for i := 0; i < len(s); {
		for i+8 <= len(s) && plain8(s[i:i+8]) {
			i += 8
		}
		if i == len(s) {
			break
		}
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			b = append(b, s[last:i]...)
			b = append(b, `\ufffd`...)
			i++
			last = i
			continue
		}
		if jsonPlain[c] {
			i++
			continue
		}
		b = append(b, s[last:i]...)
		switch c {
		case '\\', '"':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xf])
		}
		i++
		last = i
	}
	b = append(b, s[last:]...)
	return append(b, '"')
}

// plain8 reports whether the eight bytes of s are all ASCII that JSON
// carries as it is (jsonPlain), testing them at once: no byte from 0x80,
// none below 0x20, no quote and no backslash. With no byte from 0x80,
// (v - 0x01..) &^ v has a byte's top bit set exactly when v has a zero
// byte, and (x - 0x20..) &^ x exactly when x has a byte below 0x20.
func plain8(s string) bool {
	_ = s[7]
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	quote, backslash := x^(ones*'"'), x^(ones*'\\')
	control := (x - ones*0x20) &^ x
	return (x|control|(quote-ones)&^quote|(backslash-ones)&^backslash)&tops == 0
}
