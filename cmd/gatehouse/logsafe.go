package main

import (
	"fmt"
	"reflect"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"gatehouse/proxy"
)

// maxLogField bounds every string field of every log line: the packages
// bound what they know to come from clients more tightly; this catches
// what they do not (an unusual request method in a SCIM line, say).
const maxLogField = 4096

// safeCore writes every line through proxy.LogSafe: the message and each
// string, error, stringer and string-list field lose their control,
// format and line-separator runes (written as \uXXXX) and are bounded, so
// no value in any line, from whichever package, can start a fake line in
// a log viewer or reorder what a terminal shows.
type safeCore struct{ zapcore.Core }

func (c safeCore) With(fields []zapcore.Field) zapcore.Core {
	return safeCore{c.Core.With(safeFields(fields))}
}

func (c safeCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c safeCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	e.Message = proxy.LogSafe(e.Message, maxLogField)
	return c.Core.Write(e, safeFields(fields))
}

// safeFields returns fields with their text made safe; fields itself when
// nothing needed a change (the common case allocates nothing).
func safeFields(fields []zapcore.Field) []zapcore.Field {
	var out []zapcore.Field
	for i, f := range fields {
		g, changed := safeField(f)
		if !changed {
			continue
		}
		if out == nil {
			out = make([]zapcore.Field, len(fields))
			copy(out, fields)
		}
		out[i] = g
	}
	if out == nil {
		return fields
	}
	return out
}

func safeField(f zapcore.Field) (zapcore.Field, bool) {
	switch f.Type {
	case zapcore.StringType:
		if s := proxy.LogSafe(f.String, maxLogField); s != f.String {
			f.String = s
			return f, true
		}
	case zapcore.ByteStringType:
		b, _ := f.Interface.([]byte)
		if s := proxy.LogSafe(string(b), maxLogField); s != string(b) {
			return zap.String(f.Key, s), true
		}
	case zapcore.ErrorType:
		if err, ok := f.Interface.(error); ok && err != nil {
			return zap.String(f.Key, proxy.LogSafe(safeError(err), maxLogField)), true
		}
	case zapcore.StringerType:
		if st, ok := f.Interface.(fmt.Stringer); ok {
			s := safeString(st)
			if t := proxy.LogSafe(s, maxLogField); t != s {
				return zap.String(f.Key, t), true
			}
		}
	case zapcore.ArrayMarshalerType:
		// zap.Strings (changed attributes, session indexes): a list of
		// strings, under a type zap does not export.
		v := reflect.ValueOf(f.Interface)
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String {
			list, changed := make([]string, v.Len()), false
			for i := range list {
				s := v.Index(i).String()
				list[i] = proxy.LogSafe(s, maxLogField)
				changed = changed || list[i] != s
			}
			if changed {
				return zap.Strings(f.Key, list), true
			}
		}
	}
	return f, false
}

// safeError is err's text; a panicking Error method (a nil pointer in an
// interface) is written as such rather than taking the process down.
func safeError(err error) (s string) {
	defer func() {
		if recover() != nil {
			s = "<error text unavailable>"
		}
	}()
	return err.Error()
}

func safeString(st fmt.Stringer) (s string) {
	defer func() {
		if recover() != nil {
			s = "<text unavailable>"
		}
	}()
	return st.String()
}
