"""The documents people read: the public notice, report.html and the results page, the draw
certificate, the manifest and its seal, the publication before the draw, offline Data Docs, and
the Chinese headers of every table people open."""
