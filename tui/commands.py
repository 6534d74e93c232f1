"""Command palette entries (Ctrl+P): open each screen by name."""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits, Provider

ENTRIES = (
    ("Open start screen", "back to ports, robots, profiles and recipes", "action_start"),
    ("Open recipes", "training recipes: edit, launch, follow the loss", "open_recipes"),
    ("Help", "keys of every screen", "action_help"),
)


class ScreenCommands(Provider):
    def _entries(self):
        for name, help_text, method in ENTRIES:
            yield name, help_text, getattr(self.app, method)

    async def discover(self) -> Hits:
        for name, help_text, callback in self._entries():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._entries():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
