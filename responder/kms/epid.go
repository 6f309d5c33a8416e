package kms

import "fmt"

// ValidateEPID checks that s has the form of a KMS host's extended product
// ID, PPPPP-GGGGG-KKK-KKKKKK-03-LCID-BUILD.0000-DDDYYYY: a 5-digit platform
// ID, 5-digit group ID, a key ID split 3+6 digits, channel 03 (volume), a
// decimal LCID (1..65535), a host build (1..6 digits), ".0000", and the
// activation day of year (001..366, 365 in common years) and year.
func ValidateEPID(s string) error {
	p := epidParser{s: s}
	p.digits("platform ID", 5, 5)
	p.lit("-")
	p.digits("group ID", 5, 5)
	p.lit("-")
	p.digits("key ID", 3, 3)
	p.lit("-")
	p.digits("key ID", 6, 6)
	p.lit("-03-")
	lcid := p.digits("LCID", 1, 5)
	p.lit("-")
	build := p.digits("build", 1, 6)
	p.lit(".0000-")
	day := p.digits("day of year", 3, 3)
	year := p.digits("year", 4, 4)
	if p.err == nil && p.i != len(s) {
		p.fail("trailing characters")
	}
	if p.err != nil {
		return p.err
	}
	leap := year%4 == 0 && (year%100 != 0 || year%400 == 0)
	switch {
	case lcid == 0 || lcid > 0xFFFF:
		return fmt.Errorf("kms: ePID %q: LCID %d out of range 1..65535", s, lcid)
	case build == 0:
		return fmt.Errorf("kms: ePID %q: host build 0", s)
	case day == 0 || day > 366 || day == 366 && !leap:
		return fmt.Errorf("kms: ePID %q: day of year %03d invalid in %04d", s, day, year)
	}
	return nil
}

// epidParser is a tiny cursor over an ePID; the first failure sticks.
type epidParser struct {
	s   string
	i   int
	err error
}

func (p *epidParser) fail(what string) {
	if p.err == nil {
		p.err = fmt.Errorf("kms: ePID %q: %s at offset %d", p.s, what, p.i)
	}
}

func (p *epidParser) lit(l string) {
	if p.err != nil {
		return
	}
	if len(p.s)-p.i < len(l) || p.s[p.i:p.i+len(l)] != l {
		p.fail(fmt.Sprintf("want %q", l))
		return
	}
	p.i += len(l)
}

// digits reads between min and max decimal digits and returns their value.
func (p *epidParser) digits(what string, min, max int) int {
	if p.err != nil {
		return 0
	}
	v, n := 0, 0
	for n < max && p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		v = v*10 + int(p.s[p.i]-'0')
		p.i++
		n++
	}
	if n < min {
		p.fail(fmt.Sprintf("%s wants %d..%d digits, has %d", what, min, max, n))
	}
	return v
}
