"""Input, output and storage: reading department files, the run folder and its lock, the warehouse,
the bundle's layout and its one-step move into place, the CSV and XLSX writers people's files go
through, and the files the package ships."""
