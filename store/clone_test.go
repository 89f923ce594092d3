package store_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/clerk-mcp-proxy/clerk-mcp-proxy/store"
)

// The clone helpers must deep-copy every slice, including ones added to the
// records later. These tests fill every field by reflection, so a new field
// that CloneClient or CloneGrant forgets makes them fail.

func TestCloneClient(t *testing.T) {
	var a, b store.Client
	fill(reflect.ValueOf(&a).Elem(), new(int))
	fill(reflect.ValueOf(&b).Elem(), new(int))
	c := store.CloneClient(a)
	scribble(reflect.ValueOf(&a).Elem())
	if !reflect.DeepEqual(c, b) {
		t.Fatalf("mutating the original changed the clone:\n got  %+v\n want %+v", c, b)
	}
}

func TestCloneGrant(t *testing.T) {
	var a, b store.Grant
	fill(reflect.ValueOf(&a).Elem(), new(int))
	fill(reflect.ValueOf(&b).Elem(), new(int))
	c := store.CloneGrant(a)
	scribble(reflect.ValueOf(&a).Elem())
	if !reflect.DeepEqual(c, b) {
		t.Fatalf("mutating the original changed the clone:\n got  %+v\n want %+v", c, b)
	}
}

func TestCloneKeepsNil(t *testing.T) {
	g := store.CloneGrant(store.Grant{})
	if g.Scopes != nil || g.Upstream != nil || g.Refresh.Retired != nil || g.Refresh.Current != nil {
		t.Fatalf("nil slices became non-nil: %+v", g)
	}
	c := store.CloneClient(store.Client{})
	if c.RedirectURIs != nil || c.SecretHash != nil {
		t.Fatalf("nil slices became non-nil: %+v", c)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// fill sets every field of v to a non-zero value derived from *n, so two
// fills from the same start are equal but share no memory.
func fill(v reflect.Value, n *int) {
	*n++
	switch {
	case v.Type() == timeType:
		v.Set(reflect.ValueOf(time.Unix(int64(*n), 0).UTC()))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("s" + string(rune('a'+*n%26)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint8:
		v.SetUint(uint64(*n % 256))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), n)
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	default:
		panic("fill: unsupported kind " + v.Kind().String() + "; extend the test")
	}
}

// scribble overwrites every element reachable through a slice in v.
func scribble(v reflect.Value) {
	switch v.Kind() {
	case reflect.Slice:
		for i := range v.Len() {
			e := v.Index(i)
			switch e.Kind() {
			case reflect.Uint8:
				e.SetUint(^e.Uint() & 0xff)
			case reflect.String:
				e.SetString("scribbled")
			default:
				scribble(e)
			}
		}
	case reflect.Struct:
		if v.Type() == timeType {
			return
		}
		for i := range v.NumField() {
			scribble(v.Field(i))
		}
	}
}
