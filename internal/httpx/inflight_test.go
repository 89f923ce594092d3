package httpx

import "testing"

func TestInFlight(t *testing.T) {
	l := NewInFlight(2)
	r1, ok1 := l.Acquire("a")
	_, ok2 := l.Acquire("a")
	_, ok3 := l.Acquire("a")
	_, okB := l.Acquire("b")
	if !ok1 || !ok2 || ok3 || !okB {
		t.Fatalf("acquire: %v %v %v %v, want true true false true", ok1, ok2, ok3, okB)
	}
	r1()
	if _, ok := l.Acquire("a"); !ok {
		t.Fatal("a released slot was not given back")
	}
	if _, ok := NewInFlight(0).Acquire("a"); !ok {
		t.Fatal("0 must admit everything")
	}
}
