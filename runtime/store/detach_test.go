package store

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestDetached: detached copies every string, slice and map of a
// Metadata, found by reflection (so that a field added later is held to
// it): none of the copy's memory is the original's.
func TestDetached(t *testing.T) {
	buf := strings.Repeat("x", 1<<12)
	within := func(p unsafe.Pointer) bool {
		b := uintptr(unsafe.Pointer(unsafe.StringData(buf)))
		return uintptr(p) >= b && uintptr(p) < b+uintptr(len(buf))
	}
	// fill sets every string to a slice of buf, every slice and map to
	// one element, every pointer to a new value.
	var n int
	next := func() string { n++; return buf[n : n+3] }
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			v.SetString(next())
		case reflect.Struct:
			if v.Type() == reflect.TypeOf(time.Time{}) {
				v.Set(reflect.ValueOf(time.Unix(1, 0)))
				return
			}
			for i := range v.NumField() {
				fill(v.Field(i))
			}
		case reflect.Slice:
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
			fill(v.Index(0))
		case reflect.Map:
			m := reflect.MakeMap(v.Type())
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k)
			fill(e)
			m.SetMapIndex(k, e)
			v.Set(m)
		case reflect.Pointer:
			v.Set(reflect.New(v.Type().Elem()))
			fill(v.Elem())
		case reflect.Int, reflect.Int64:
			v.SetInt(1)
		case reflect.Bool:
			v.SetBool(true)
		default:
			t.Fatalf("a field of kind %s: extend the test", v.Kind())
		}
	}
	var m Metadata
	fill(reflect.ValueOf(&m).Elem())
	d := m.detached()
	if !reflect.DeepEqual(d, m) {
		t.Fatalf("the copy differs:\n%+v\n%+v", d, m)
	}
	// shared reports the paths of d whose memory is m's.
	var shared []string
	var walk func(path string, dv, mv reflect.Value)
	walk = func(path string, dv, mv reflect.Value) {
		switch dv.Kind() {
		case reflect.String:
			if within(unsafe.Pointer(unsafe.StringData(dv.String()))) {
				shared = append(shared, path)
			}
		case reflect.Struct:
			if dv.Type() == reflect.TypeOf(time.Time{}) {
				return // a value; its location pointer is shared by design
			}
			for i := range dv.NumField() {
				walk(path+"."+dv.Type().Field(i).Name, dv.Field(i), mv.Field(i))
			}
		case reflect.Slice:
			if dv.Len() > 0 && dv.Pointer() == mv.Pointer() {
				shared = append(shared, path)
			}
			for i := range dv.Len() {
				walk(path+"[]", dv.Index(i), mv.Index(i))
			}
		case reflect.Map:
			if dv.Pointer() == mv.Pointer() {
				shared = append(shared, path)
			}
			for _, k := range dv.MapKeys() { // the copy's own keys
				walk(path+"{key}", k, k)
				walk(path+"{}", dv.MapIndex(k), mv.MapIndex(k))
			}
		case reflect.Pointer:
			if !dv.IsNil() && dv.Pointer() == mv.Pointer() {
				shared = append(shared, path)
			}
		}
	}
	walk("Metadata", reflect.ValueOf(d), reflect.ValueOf(m))
	if len(shared) > 0 {
		t.Errorf("shared with the original: %v", shared)
	}
}
