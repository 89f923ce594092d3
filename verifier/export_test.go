package verifier

// OpenedTokens counts the grants whose Clerk tokens this verifier keeps opened.
func (v *Verifier) OpenedTokens() int { return v.opened.Len() }
