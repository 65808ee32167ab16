; Inno Setup script for the Windows installer of Hearth (Inno Setup 6).
;
; Build the app first (dist\hearth\ from packaging\hearth.spec, icons in
; build\icons\), then, from the repository root:
;   iscc /DAppVersion=0.1.0 packaging\windows\hearth.iss
; Output: dist\Hearth-windows-x86_64-setup.exe
;
; Installs per user by default (no administrator rights needed; the wizard
; offers an all-users install). The Start-menu entry starts hearthw.exe (no
; console window); hearth.exe in the same folder is the command-line program.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define RepoRoot AddBackslash(SourcePath) + "..\.."

[Setup]
AppId={{6F1D2C4B-8E57-4C3A-9B0E-2A7D5F3E9C41}
AppName=Hearth
AppVersion={#AppVersion}
AppVerName=Hearth {#AppVersion}
AppPublisher=Hearth
AppComments=Chat with gpt-oss and other GGUF models privately on this computer.
DefaultDirName={autopf}\Hearth
DefaultGroupName=Hearth
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#RepoRoot}\dist
OutputBaseFilename=Hearth-windows-x86_64-setup
#if FileExists(RepoRoot + "\build\icons\hearth.ico")
SetupIconFile={#RepoRoot}\build\icons\hearth.ico
#endif
UninstallDisplayIcon={app}\hearthw.exe
UninstallDisplayName=Hearth
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; Hearth's engine keeps the model file open: close the app before updating.
CloseApplications=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; An update replaces the whole app folder: libraries of an older version must not linger.
Type: filesandordirs; Name: "{app}\_internal"
Type: files; Name: "{app}\ggml-cpu-*.dll"

[Files]
Source: "{#RepoRoot}\dist\hearth\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\Hearth"; Filename: "{app}\hearthw.exe"; Comment: "Private, offline chat"
Name: "{autodesktop}\Hearth"; Filename: "{app}\hearthw.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\hearthw.exe"; Description: "{cm:LaunchProgram,Hearth}"; Flags: nowait postinstall skipifsilent
