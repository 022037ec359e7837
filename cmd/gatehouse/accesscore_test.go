package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the DST zone below, whatever the machine has installed
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// genericAccessCore is the access core as it was before accessCore: zap's
// JSON encoder with the production keys and ISO 8601 times, under
// safeCore. Built here from zap's own parts, not from jsonEncoderConfig,
// so that the reference does not move with the code under test.
func genericAccessCore(out zapcore.WriteSyncer) zapcore.Core {
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	return safeCore{zapcore.NewCore(zapcore.NewJSONEncoder(ec), out, zapcore.DebugLevel)}
}

// writeBoth writes one entry through accessCore and through the generic
// core (each after With(with), when with is not nil) and returns the
// bytes each wrote.
func writeBoth(t testing.TB, e zapcore.Entry, fields, with []zapcore.Field) (fast, generic string) {
	t.Helper()
	var fb, gb bytes.Buffer
	var fc, gc zapcore.Core = newAccessCore(zapcore.AddSync(&fb), zapcore.DebugLevel), genericAccessCore(zapcore.AddSync(&gb))
	if with != nil {
		fc, gc = fc.With(with), gc.With(with)
	}
	if err := fc.Write(e, fields); err != nil {
		t.Fatalf("accessCore: %v", err)
	}
	if err := gc.Write(e, fields); err != nil {
		t.Fatalf("generic core: %v", err)
	}
	return fb.String(), gb.String()
}

// hostileStrings are values an access line may be handed: what LogSafe
// rewrites, what it lets through and what JSON must escape.
func hostileStrings() []string {
	s := []string{
		"", "plain", `"quoted"`, `back\slash`, `\u2028`, `\"`, "\x7f", "DEL\x7fin",
		"\u2028", "line\u2028sep\u2029para", "\u0085", "\u202eevil\u2066", "\u200b",
		"\xff", "a\xc3", "\xc0\xaf", "a\xed\xa0\x80b", "\xf4\x90\x80\x80", "\xef\xbf\xbd", "\ufffd",
		"José", "日本語", "👍", "\U0001F600x", "é",
		strings.Repeat("a", maxLogField), strings.Repeat("a", maxLogField+1), strings.Repeat("b", 3*maxLogField),
		strings.Repeat("é", maxLogField/2+3), strings.Repeat("日", maxLogField), "x" + strings.Repeat("\n", maxLogField),
		strings.Repeat("\"", maxLogField+10), strings.Repeat("\xff", maxLogField+10),
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
	}
	var c0 strings.Builder
	for c := range 0x20 {
		s = append(s, string(rune(c)), "a"+string(rune(c))+"b")
		c0.WriteByte(byte(c))
	}
	return append(s, c0.String())
}

// testZones are the locations entry times are written in: UTC, fixed
// offsets east and west (one with seconds, as local mean times have) and
// a zone with daylight saving time.
func testZones(t testing.TB) []*time.Location {
	t.Helper()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	return []*time.Location{time.UTC, time.FixedZone("IST", 5*3600+30*60), time.FixedZone("", -(3*3600 + 17*60 + 30)), ny, time.Local}
}

// testTimes are entry times around second boundaries, the turns of New
// York's daylight saving time, far years and before 1970.
func testTimes() []time.Time {
	base := []time.Time{
		time.Date(2026, 12, 7, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 8, 0, 0, 0, 1_000_000, time.UTC),
		time.Date(2026, 12, 8, 0, 0, 0, 999_000, time.UTC),
		time.Date(2026, 12, 8, 0, 0, 0, 123_456_789, time.UTC),
		time.Date(2026, 3, 8, 6, 59, 59, 999_000_000, time.UTC),    // 01:59:59.999 EST
		time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC),                // 03:00:00.000 EDT
		time.Date(2026, 11, 1, 5, 59, 59, 500_000_000, time.UTC),   // 01:59:59.500 EDT
		time.Date(2026, 11, 1, 6, 0, 0, 500_000_000, time.UTC),     // 01:00:00.500 EST
		time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC), // a negative Unix second
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(12345, 6, 7, 8, 9, 10, 11_000_000, time.UTC),
	}
	return base
}

// TestAccessCoreMatchesZap: for every entry an access line may be (hostile
// strings in the message, the keys, the values and the logger name;
// extreme integers and durations; booleans; every level; times in every
// test zone, or none), accessCore writes exactly the bytes the generic
// core writes, and takes its fast path to do so.
func TestAccessCoreMatchesZap(t *testing.T) {
	zones := testZones(t)
	var times []time.Time
	for _, tt := range testTimes() {
		for _, z := range zones {
			times = append(times, tt.In(z))
		}
	}
	times = append(times, time.Time{}, time.Now())
	ints := []int64{0, 1, -1, 42, 200, 65536, math.MaxInt64, math.MinInt64, math.MinInt64 + 1}
	durations := []time.Duration{0, 1, -1, 999, time.Microsecond, 1500 * time.Microsecond, 999_999, time.Millisecond,
		123456789, time.Second, 90 * time.Minute, 2 * time.Hour, 100_000 * time.Hour, math.MaxInt64, math.MinInt64}
	levels := []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel, zapcore.WarnLevel, zapcore.ErrorLevel,
		zapcore.DPanicLevel, zapcore.PanicLevel, zapcore.FatalLevel, zapcore.Level(42), zapcore.Level(-7)}

	var n int
	check := func(name string, e zapcore.Entry, fields []zapcore.Field) {
		t.Helper()
		if !accessFast(e, fields) {
			t.Fatalf("%s: entry not on the fast path", name)
		}
		fast, generic := writeBoth(t, e, fields, nil)
		if fast != generic {
			t.Errorf("%s:\naccessCore %q\ngeneric    %q", name, fast, generic)
		}
		if !json.Valid([]byte(fast)) {
			t.Errorf("%s: not JSON: %q", name, fast)
		}
		n++
	}
	for i, s := range hostileStrings() {
		e := zapcore.Entry{Level: zapcore.InfoLevel, Time: times[i%len(times)], LoggerName: "access", Message: s}
		check("message", e, nil)
		e.Message = "request"
		check("value", e, []zapcore.Field{zap.String("path", s), zap.String("user_agent", s+s)})
		check("key", e, []zapcore.Field{zap.String(s, "v"), zap.Int(s+"n", i), zap.Bool(s, true), zap.Duration(s, time.Duration(i))})
		e.LoggerName = s
		check("logger name", e, []zapcore.Field{zap.String("k", "v")})
	}
	for i, tm := range times {
		e := zapcore.Entry{Level: levels[i%len(levels)], Time: tm, LoggerName: "access", Message: "request"}
		check("time "+tm.String(), e, accessFields(i, "/p", "agent"))
	}
	for _, l := range levels {
		check("level "+l.String(), zapcore.Entry{Level: l, Time: times[0], Message: "request"}, nil)
	}
	for _, v := range ints {
		check("int", zapcore.Entry{Time: times[1]}, []zapcore.Field{zap.Int64("bytes", v), zap.Int("status", int(v))})
	}
	for _, d := range durations {
		check("duration "+d.String(), zapcore.Entry{Time: times[2]}, []zapcore.Field{zap.Duration("duration", d)})
	}
	check("bools", zapcore.Entry{}, []zapcore.Field{zap.Bool("upgraded", true), zap.Bool("no", false)})
	check("no fields, no time, no name", zapcore.Entry{}, nil)
	if n < 300 {
		t.Fatalf("only %d entries compared", n)
	}
}

// accessFields is a typical access line's 13 fields, as proxy.logAccess
// writes them for a proxied request of a signed-in user.
func accessFields(i int, path, agent string) []zapcore.Field {
	return []zapcore.Field{
		zap.String("request_id", "01JEX4Q7ZK3M6YV8T2N5R9W0CD"),
		zap.String("method", "GET"),
		zap.String("path", path),
		zap.Int("status", 200),
		zap.Int64("bytes", 1024+int64(i)),
		zap.Duration("duration", 1_234_567*time.Nanosecond+time.Duration(i)),
		zap.String("client_ip", "203.0.113.7"),
		zap.String("host", "app.example.com"),
		zap.String("proto", "HTTP/1.1"),
		zap.String("user_agent", agent),
		zap.Duration("upstream_duration", 987_654*time.Nanosecond),
		zap.String("user", "alice@example.com"),
		zap.String("user_id", "8d6f3c2e-1b4a-4f6e-9c1d-2a7b5e8f0c3d"),
	}
}

type stringer struct{}

func (stringer) String() string { return "str\u2028inger" }

// TestAccessCoreFallback: an entry with any other field type, a caller or
// a stack, and a core with fields added through With, is written by the
// generic core: the bytes are the generic core's, LogSafe included.
func TestAccessCoreFallback(t *testing.T) {
	e := zapcore.Entry{Level: zapcore.InfoLevel, Time: time.Date(2026, 12, 7, 23, 0, 0, 5e6, time.UTC), LoggerName: "access", Message: "request\u2028"}
	caller := e
	caller.Caller = zapcore.NewEntryCaller(0, "gatehouse/proxy/accesslog.go", 203, true)
	stack := e
	stack.Stack = "goroutine 1 [running]:\nmain.main()"
	plain := []zapcore.Field{zap.String("path", "/a\u2028b"), zap.Int("status", 200)}
	for _, tc := range []struct {
		name   string
		e      zapcore.Entry
		fields []zapcore.Field
		with   []zapcore.Field
	}{
		{"caller", caller, plain, nil},
		{"stack", stack, plain, nil},
		{"error", e, []zapcore.Field{zap.Error(errors.New("no user \u2028x"))}, nil},
		{"strings", e, []zapcore.Field{zap.Strings("changed", []string{"email\u2029", "name"})}, nil},
		{"byte string", e, []zapcore.Field{zap.ByteString("raw", []byte("a\u2028\xff"))}, nil},
		{"stringer", e, []zapcore.Field{zap.Stringer("s", stringer{})}, nil},
		{"float", e, []zapcore.Field{zap.Float64("ratio", math.NaN()), zap.Float64("x", 0.1)}, nil},
		{"int32", e, []zapcore.Field{zap.Int32("n", -5)}, nil},
		{"uint64", e, []zapcore.Field{zap.Uint64("n", math.MaxUint64)}, nil},
		{"time", e, []zapcore.Field{zap.Time("at", e.Time)}, nil},
		{"skip", e, []zapcore.Field{zap.String("a", "b"), zap.Skip(), zap.Int("c", 1)}, nil},
		{"namespace", e, []zapcore.Field{zap.Namespace("ns"), zap.String("in", "x\n")}, nil},
		{"any", e, []zapcore.Field{zap.Any("m", map[string]int{"a": 1})}, nil},
		{"with", e, plain, []zapcore.Field{zap.String("client", "tokens[0]\u2028"), zap.Int("n", 1)}},
		{"with, no entry fields", e, nil, []zapcore.Field{zap.String("client", "x")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.with == nil && accessFast(tc.e, tc.fields) {
				t.Fatal("entry on the fast path")
			}
			if tc.with != nil {
				if _, fast := newAccessCore(zapcore.AddSync(io.Discard), zapcore.DebugLevel).With(tc.with).(*accessCore); fast {
					t.Fatal("a core with fields stays on the fast path")
				}
			}
			fast, generic := writeBoth(t, tc.e, tc.fields, tc.with)
			if fast != generic {
				t.Errorf("\naccessCore %q\ngeneric    %q", fast, generic)
			}
			checkSafeLines(t, []byte(fast), 8<<10)
		})
	}
	c := newAccessCore(zapcore.AddSync(io.Discard), zapcore.DebugLevel)
	if c.With(nil) != zapcore.Core(c) {
		t.Error("With of no fields left the fast path")
	}
}

// TestAccessCoreTimeCache: the cached text of a second is used only for
// that second in that offset: stepping across second boundaries, across
// the turns of daylight saving time, between zones within one second and
// back, every time is written as time.Format writes the ISO 8601 layout.
func TestAccessCoreTimeCache(t *testing.T) {
	const layout = "2006-01-02T15:04:05.000Z0700"
	zones := testZones(t)
	var l accessLine
	check := func(tm time.Time) {
		t.Helper()
		got := string(l.appendTime(nil, tm))
		if want := tm.Format(layout); got != want {
			t.Errorf("%s: %q, want %q", tm, got, want)
		}
	}
	for _, tm := range testTimes() {
		for _, z := range zones {
			for _, step := range []time.Duration{-time.Second, -time.Millisecond, 0, time.Millisecond, 999 * time.Millisecond, time.Second} {
				check(tm.Add(step).In(z))
			}
		}
		// The same second in every zone, then in the first again: a
		// cache keyed by the second alone would repeat one zone's text.
		for _, z := range zones {
			check(tm.In(z))
		}
		check(tm.In(zones[1]))
		check(tm.In(zones[0]))
	}
	// Walk through the spring-forward hour in New York a quarter second
	// at a time: the offset changes within a run of hits.
	ny := zones[3]
	start := time.Date(2026, 3, 8, 6, 59, 58, 0, time.UTC)
	for i := range 16 {
		check(start.Add(time.Duration(i) * 250 * time.Millisecond).In(ny))
	}
}

// TestAccessCoreConcurrent: writers sharing the pool of line buffers (and
// their time caches), each with its own times and zones, all write what
// the generic core writes; run with -race.
func TestAccessCoreConcurrent(t *testing.T) {
	zones := testZones(t)
	base := time.Date(2026, 12, 7, 23, 59, 58, 0, time.UTC)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			var fb, gb bytes.Buffer
			fast, generic := newAccessCore(zapcore.AddSync(&fb), zapcore.InfoLevel), genericAccessCore(zapcore.AddSync(&gb))
			for i := range 400 {
				tm := base.Add(time.Duration(i*(w+1)) * 7 * time.Millisecond).In(zones[(i+w)%len(zones)])
				e := zapcore.Entry{Level: zapcore.InfoLevel, Time: tm, LoggerName: "access", Message: "request"}
				fields := accessFields(i, "/w", "agent")
				if err := fast.Write(e, fields); err != nil {
					t.Error(err)
					return
				}
				if err := generic.Write(e, fields); err != nil {
					t.Error(err)
					return
				}
			}
			if fb.String() != gb.String() {
				t.Errorf("writer %d: the lines differ", w)
			}
		})
	}
	wg.Wait()
}

// TestAccessCoreFloat: durations' seconds and any other float are written
// as zap writes a float64, NaN and the infinities included.
func TestAccessCoreFloat(t *testing.T) {
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{})
	for _, v := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1e-9, 1e21, 1e-7, 123.456, math.MaxFloat64,
		math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1), float64(math.MaxInt64) / 1e9} {
		buf, err := enc.EncodeEntry(zapcore.Entry{}, []zapcore.Field{zap.Float64("f", v)})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := `{"f":`+string(appendJSONFloat(nil, v))+"}\n", buf.String(); got != want {
			t.Errorf("%v: %q, want %q", v, got, want)
		}
		buf.Free()
	}
}

// TestAccessCoreSeconds: durations are written in seconds exactly as zap
// writes float64(d)/1e9, on both sides of the 10^15 ns bound below which
// the digits come from the integer.
func TestAccessCoreSeconds(t *testing.T) {
	check := func(d time.Duration) {
		t.Helper()
		if got, want := string(appendSeconds(nil, d)), string(appendJSONFloat(nil, float64(d)/float64(time.Second))); got != want {
			t.Fatalf("%d ns: %q, want %q", int64(d), got, want)
		}
	}
	for d := range time.Duration(200_000) {
		check(d)
		check(-d)
	}
	for _, d := range []time.Duration{1e15 - 1, 1e15, 1e15 + 1, 999_999_999, 1_000_000_001, 1e9, 1e12 + 1,
		math.MaxInt64, math.MinInt64, math.MinInt64 + 1, 1 << 53, 1<<53 + 1} {
		check(d)
		check(-d)
	}
	// Every magnitude, each digit count of the fraction.
	r := rand.New(rand.NewPCG(1, 2))
	for range 300_000 {
		d := time.Duration(r.Int64N(1 << r.IntN(63)))
		check(d)
		check(-d)
		check(d / 1000 * 1000)
	}
}

// TestAccessCorePlain8: the eight-byte test agrees with the byte table
// for every byte value at every position, among plain bytes and among
// random ones.
func TestAccessCorePlain8(t *testing.T) {
	check := func(s string) {
		t.Helper()
		want := true
		for i := range 8 {
			want = want && s[i] < utf8.RuneSelf && jsonPlain[s[i]]
		}
		if got := plain8(s); got != want {
			t.Fatalf("%q: %v, want %v", s, got, want)
		}
	}
	for _, bg := range []string{"aaaaaaaa", "        ", "~~~~~~~~", "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f", "!!!!!!!!", "]]]]]]]]", "########"} {
		for pos := range 8 {
			for c := range 256 {
				s := []byte(bg)
				s[pos] = byte(c)
				check(string(s))
				for _, c2 := range []byte{0, 0x1f, 0x20, 0x21, '"', 0x23, '[', '\\', ']', 0x7e, 0x7f, 0x80, 0xc3, 0xff} {
					s[(pos+3)%8] = c2
					check(string(s))
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	var s [8]byte
	for range 300_000 {
		for i := range s {
			s[i] = byte(r.IntN(256))
			if r.IntN(2) == 0 {
				s[i] = byte(0x20 + r.IntN(0x60)) // mostly plain, so that one odd byte decides
			}
		}
		check(string(s[:]))
	}
}

// TestAccessLogFastPathSafe: the access logger newLogger builds for the
// JSON format (buffered or not) uses accessCore, and its lines still
// carry no separator, control or bidi rune raw and no unbounded value;
// the console format keeps zap's encoder.
func TestAccessLogFastPathSafe(t *testing.T) {
	zero, second := time.Duration(0), time.Second
	for _, tc := range []struct {
		name  string
		cfg   LogConfig
		isNew bool
	}{
		{"json", LogConfig{Format: "json", Level: "warn", AccessFlushInterval: &zero}, true},
		{"json buffered", LogConfig{Format: "json", Level: "warn", AccessFlushInterval: &second}, true},
		{"default format", LogConfig{Level: "info", AccessFlushInterval: &zero}, true},
		{"console", LogConfig{Format: "console", Level: "info", AccessFlushInterval: &zero}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf lockedBuffer
			logger, err := newLogger(tc.cfg, &buf)
			if err != nil {
				t.Fatal(err)
			}
			sc, ok := logger.Core().(streamCore)
			if !ok {
				t.Fatalf("core %T", logger.Core())
			}
			if _, isNew := sc.access.(*accessCore); isNew != tc.isNew {
				t.Fatalf("access core %T", sc.access)
			}
			hostile := "x\u2028y\u2029z\u0085\u202eevil\u2066\u200b\r\n"
			logger.Named(accessLogger).Info("request"+hostile, zap.String("path", "/"+hostile),
				zap.String("user_agent", strings.Repeat("A", 60_000)), zap.Int("status", 200))
			_ = logger.Sync() // writes the buffered line
			out := buf.b.Bytes()
			checkSafeLines(t, out, 8<<10)
			if tc.cfg.Format == "console" {
				return
			}
			lines := buf.lines(t)
			if len(lines) != 1 {
				t.Fatalf("%d lines: %s", len(lines), out)
			}
			if got, want := lines[0]["path"], `/x\u2028y\u2029z\u0085\u202eevil\u2066\u200b\u000d\u000a`; got != want {
				t.Errorf("path %q, want %q", got, want)
			}
			if ua := lines[0]["user_agent"].(string); len(ua) > maxLogField+len("...[truncated]") {
				t.Errorf("user_agent of %d bytes", len(ua))
			}
		})
	}
}

// raceBuild reports whether the test binary has the race detector, under
// which sync.Pool drops items at random (and so allocates).
func raceBuild() bool {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestAccessCoreNoAllocs: in steady state an access line, from the
// logger's Check down to the write, allocates nothing.
func TestAccessCoreNoAllocs(t *testing.T) {
	if raceBuild() {
		t.Skip("sync.Pool drops items under the race detector")
	}
	var w countingWriter
	logger := accessBenchLogger(newAccessCore(zapcore.Lock(zapcore.AddSync(&w)), zapcore.InfoLevel))
	fields := accessFields(1, "/reports/q1", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	write := func() {
		if ce := logger.Check(zapcore.InfoLevel, "request"); ce != nil {
			ce.Write(fields...)
		}
	}
	write()
	if n := testing.AllocsPerRun(1000, write); n != 0 {
		t.Errorf("%v allocations per line, want 0", n)
	}
	// One line above, one for AllocsPerRun's warm-up, then its runs.
	if w.lines != 1002 {
		t.Fatalf("%d lines written, want 1002", w.lines)
	}
}

// accessBenchLogger is the access logger as serve has it: the stream
// core's access side, the logger named "access", the other lines at
// log.level warn and the streams at info.
func accessBenchLogger(access zapcore.Core) *zap.Logger {
	enc := zapcore.NewJSONEncoder(jsonEncoderConfig())
	return zap.New(streamCore{
		Core:    safeCore{zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.WarnLevel)},
		streams: safeCore{zapcore.NewCore(enc, zapcore.AddSync(io.Discard), zapcore.InfoLevel)},
		access:  access,
	}).Named(accessLogger)
}

// countingWriter counts the lines written to it.
type countingWriter struct{ lines int }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.lines += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

// BenchmarkAccessCore: one typical access line (13 fields) from the
// logger's Check down, through accessCore and through the generic core,
// to a locked writer and to the buffered one serve uses by default.
func BenchmarkAccessCore(b *testing.B) {
	fields := accessFields(1, "/reports/q1", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	for _, out := range []string{"locked", "buffered"} {
		for _, kind := range []string{"generic", "accessCore"} {
			b.Run(kind+"/"+out, func(b *testing.B) {
				var ws zapcore.WriteSyncer = zapcore.Lock(zapcore.AddSync(io.Discard))
				if out == "buffered" {
					bws := &zapcore.BufferedWriteSyncer{WS: ws, Size: accessBufferBytes, FlushInterval: time.Second}
					defer bws.Stop()
					ws = bws
				}
				var core zapcore.Core = newAccessCore(ws, zapcore.InfoLevel)
				if kind == "generic" {
					core = safeCore{zapcore.NewCore(zapcore.NewJSONEncoder(jsonEncoderConfig()), ws, zapcore.InfoLevel)}
				}
				logger := accessBenchLogger(core)
				if logger.Check(zapcore.InfoLevel, "request") == nil {
					b.Fatal("the access logger writes no info line")
				}
				b.ReportAllocs()
				for b.Loop() {
					logger.Check(zapcore.InfoLevel, "request").Write(fields...)
				}
			})
		}
	}
}

// FuzzAccessCore: for any strings, integers, durations, booleans and
// times, accessCore writes exactly what the generic core writes.
func FuzzAccessCore(f *testing.F) {
	f.Add("request", "path", "/a\"b\\c\x00\u2028\xff", int64(200), int64(1500000), true, int64(1765148400), int64(123456789), uint8(0), int32(0))
	f.Add("", "", "", int64(math.MinInt64), int64(math.MaxInt64), false, int64(-1), int64(999999999), uint8(1), int32(-12600))
	f.Add("é\x7f", "k\n", strings.Repeat("\x1f", 5000), int64(-1), int64(1), true, int64(1772953199), int64(999000000), uint8(2), int32(19800))
	f.Add("x", "y", "z", int64(0), int64(0), false, int64(0), int64(0), uint8(3), int32(0))
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg, key, val string, n, d int64, flag bool, sec, nsec int64, zone uint8, off int32) {
		var tm time.Time // zone 3: no time
		switch zone % 4 {
		case 0:
			tm = time.Unix(sec, nsec).UTC()
		case 1:
			tm = time.Unix(sec, nsec).In(ny)
		case 2:
			tm = time.Unix(sec, nsec).In(time.FixedZone("", int(off)))
		}
		e := zapcore.Entry{Level: zapcore.Level(int8(n)), Time: tm, LoggerName: key, Message: msg}
		fields := []zapcore.Field{zap.String(key, val), zap.Int64(val, n), zap.Duration("d", time.Duration(d)), zap.Bool(msg, flag), zap.String("v", msg+val)}
		fast, generic := writeBoth(t, e, fields, nil)
		if fast != generic {
			t.Errorf("\naccessCore %q\ngeneric    %q", fast, generic)
		}
	})
}
