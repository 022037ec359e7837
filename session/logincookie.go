package session

import (
	"net/http"
	"strconv"
	"strings"
)

// Pending logins travel in a few fixed cookie slots, not in a cookie per
// login: a browser that starts many logins without finishing them holds
// at most loginSlots of these cookies, and a new login takes the slot its
// RelayState token picks, replacing an older login there. StartLogin sees
// the slots (they are scoped to "/", as a __Host- cookie must be) and
// draws tokens until one picks a free slot, so logins started in a few
// tabs at once do not push each other out.
const loginSlots = 4

// Names of gatehouse's short-lived state cookies. When cookies are Secure
// they carry the __Host- prefix (Secure, Path=/, no Domain: no sibling
// host can set or shadow them).
const (
	loginCookieBase  = "gatehouse_login_"
	logoutCookieBase = "gatehouse_logout"
	hostPrefix       = "__Host-"
)

// StateCookiePrefixes are the name prefixes of gatehouse's own
// short-lived cookies (pending logins and logouts), which, like the
// session cookie, must never reach the upstream.
func StateCookiePrefixes() []string {
	return []string{hostPrefix + loginCookieBase, hostPrefix + logoutCookieBase, loginCookieBase, logoutCookieBase}
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// tokenSlot is the slot a RelayState token's login state lives in: its
// first character's value (six random bits) modulo loginSlots.
func tokenSlot(token string) int {
	if token == "" {
		return 0
	}
	return max(strings.IndexByte(tokenAlphabet, token[0]), 0) % loginSlots
}

func (m *Manager) cookieName(base string) string {
	if m.secure() {
		return hostPrefix + base
	}
	return base
}

func (m *Manager) loginCookieName(slot int) string {
	return m.cookieName(loginCookieBase + strconv.Itoa(slot))
}

func (m *Manager) bindingCookieName(token string) string { return m.loginCookieName(tokenSlot(token)) }

func (m *Manager) logoutCookieName() string { return m.cookieName(logoutCookieBase) }

// hasLiveLogin reports whether the request carries a login slot that
// opens (it was sealed here) and has not expired: a cookie merely named
// like one does not count.
func (m *Manager) hasLiveLogin(r *http.Request) bool {
	for i := range loginSlots {
		if m.slotBusy(r, i) {
			return true
		}
	}
	return false
}

// slotBusy reports whether the slot holds a login state that still
// opens and has not expired.
func (m *Manager) slotBusy(r *http.Request, slot int) bool {
	name := m.loginCookieName(slot)
	c, err := r.Cookie(name)
	if err != nil {
		return false
	}
	plain, err := m.sealer.open(name, c.Value)
	if err != nil {
		return false
	}
	st, err := decodeState(plain)
	return err == nil && m.now().Before(st.Expires)
}

// loginToken draws a RelayState token for a new login, preferring one
// whose slot is free; when every slot is busy the last draw replaces the
// login in its slot.
func (m *Manager) loginToken(r *http.Request) (string, error) {
	var token string
	for range 4 * loginSlots {
		var err error
		if token, err = randomToken(); err != nil {
			return "", err
		}
		if !m.slotBusy(r, tokenSlot(token)) {
			break
		}
	}
	return token, nil
}

// bindingCookie carries a pending login's sealed state, and so ties it to
// the browser that started it. The IdP posts the response cross-site, so
// where the cookie is Secure it is SameSite=None. maxAge < 0 deletes it.
func (m *Manager) bindingCookie(token, sealed string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: m.bindingCookieName(token), Value: sealed, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: m.secure(), SameSite: m.crossSite()}
}

// logoutCookie binds an SP-initiated logout to its response; maxAge < 0
// deletes it.
func (m *Manager) logoutCookie(sealed string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: m.logoutCookieName(), Value: sealed, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: m.secure(), SameSite: m.crossSite()}
}

// crossSite is the SameSite mode of a cookie that must come back on a
// cross-site POST from the IdP.
func (m *Manager) crossSite() http.SameSite {
	if m.secure() {
		return http.SameSiteNoneMode
	}
	return http.SameSiteLaxMode
}
