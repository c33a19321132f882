// launch starts Debian's Chromium (never a downloaded browser), headless,
// as every player script drives it: media plays without a gesture,
// background networking is off, and WebRTC between two contexts of one
// browser works on loopback (host candidates on 127.0.0.1, without mDNS
// names).
import { chromium } from 'playwright-core';

export function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--autoplay-policy=no-user-gesture-required',
      '--allow-loopback-in-peer-connection', '--disable-features=WebRtcHideLocalIpsWithMdns'],
  });
}
